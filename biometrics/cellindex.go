package biometrics

// cellIndex files stored points under grid cells: for each cell, the
// points filed there, in the order they were filed. It is the replay
// registry's index, laid out flat for memory: a map of one slice per cell
// cost about 230 bytes per stored point in maps, slice headers and
// half-used backing arrays (BenchmarkReplayRegistryMemory); here a cell is
// a slot of an open-addressing table (its key and the newest entry filed
// under it), and an entry is two int32s, the point and the cell's entry
// filed before it.
type cellIndex struct {
	keys  []uint64
	heads []int32 // 1 + the cell's newest entry; 0 marks an empty slot
	used  int
	// entries[i] is (point, 1 + the same cell's previous entry, or 0).
	entries []cellEntry
}

type cellEntry struct {
	point int32
	prev  int32
}

// cellIndexMinSlots is the table's first size; it doubles past 3/4 full.
const cellIndexMinSlots = 1 << 10

// slot is where key is, or the empty slot where it would go.
func (x *cellIndex) slot(key uint64) int {
	mask := len(x.keys) - 1
	// The key is already a hash (FNV of the cell's coordinates); the
	// multiply spreads its high bits into the slot's.
	i := int((key*0x9E3779B97F4A7C15)>>32) & mask
	for x.heads[i] != 0 && x.keys[i] != key {
		i = (i + 1) & mask
	}
	return i
}

// add files point under key, after the points already filed there.
func (x *cellIndex) add(key uint64, point int32) {
	if 4*(x.used+1) > 3*len(x.keys) {
		x.grow()
	}
	i := x.slot(key)
	if x.heads[i] == 0 {
		x.keys[i] = key
		x.used++
	}
	x.entries = append(x.entries, cellEntry{point: point, prev: x.heads[i]})
	x.heads[i] = int32(len(x.entries))
}

func (x *cellIndex) grow() {
	keys, heads := x.keys, x.heads
	size := max(cellIndexMinSlots, 2*len(keys))
	x.keys, x.heads = make([]uint64, size), make([]int32, size)
	for i, h := range heads {
		if h != 0 {
			j := x.slot(keys[i])
			x.keys[j], x.heads[j] = keys[i], h
		}
	}
}

// reset empties the index and keeps its arrays for the next generation:
// the registry's generations reach the same size each time, and filling
// one again in place frees the collector from tens of megabytes of arrays
// dropped and regrown every few minutes.
func (x *cellIndex) reset() {
	clear(x.heads)
	x.used = 0
	x.entries = x.entries[:0]
}
