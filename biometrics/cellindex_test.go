package biometrics

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestCellIndexMatchesSlicesPerCell: the flat index answers every lookup
// as the map of slices it replaced did (a cell's newest maxCandidates
// points, oldest first), through table growth, probing over crowded
// slots, and a reset for the next generation.
func TestCellIndexMatchesSlicesPerCell(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var x cellIndex
	for round := range 2 {
		want := map[uint64][]int32{}
		// Few distinct keys crowd some cells past the candidate bound;
		// many make the table grow.
		keys := make([]uint64, 5000)
		for i := range keys {
			keys[i] = rng.Uint64()
		}
		for p := range int32(40000) {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(10) == 0 {
				k = keys[rng.IntN(8)]
			}
			x.add(k, p)
			want[k] = append(want[k], p)
		}
		var buf []int32
		for _, k := range append(keys, rng.Uint64()) {
			w := want[k]
			if len(w) > maxCandidates {
				w = w[len(w)-maxCandidates:]
			}
			buf = x.newest(buf[:0], k, maxCandidates)
			if !slices.Equal(buf, w) && len(buf)+len(w) > 0 {
				t.Fatalf("round %d, cell %x: %v, want %v", round, k, buf, w)
			}
		}
		x.reset()
		if got := x.newest(nil, keys[0], maxCandidates); len(got) != 0 {
			t.Fatalf("after reset the index still holds %v", got)
		}
	}
}

// TestGenerationArraysStopAtTheBound: a generation's points are kept in an
// array that is refilled in place for good, so it must not outgrow the
// generation's bound (half of ReplayMaxPoints) by more than the batch
// that reaches it, whatever append would have grown it to.
func TestGenerationArraysStopAtTheBound(t *testing.T) {
	const maxPoints, batch = 3000, 7
	cfg, err := Config{ReplayMaxPoints: maxPoints}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayRegistry(cfg)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	idx, pts, contiguous := make([]uint32, batch), make([]motionPoint, batch), make([]bool, batch)
	for n := range 4 * maxPoints / batch {
		for i := range pts {
			idx[i] = uint32(n*batch + i)
			pts[i] = motionPoint{float32(n) * 0.01, float32(i) * 0.01}
			contiguous[i] = true
		}
		r.addIndexed(1, idx, pts, contiguous, at)
	}
	if r.gens[1] == nil {
		t.Fatal("no generation turned over")
	}
	for i, g := range r.gens {
		if c := cap(g.points); c > maxPoints/2+batch {
			t.Errorf("generation %d holds an array of %d points, bound %d and a batch of %d", i, c, maxPoints/2, batch)
		}
	}
}

// newest appends to dst the points filed under key, at most limit of them,
// the latest ones, oldest first: the order a slice per cell kept them in.
// It reads one chain at a time, as the registry's lookup did before it
// read a point's four chains side by side (replayRegistry.candidates): the
// tests' reference.
func (x *cellIndex) newest(dst []int32, key uint64, limit int) []int32 {
	if x.used == 0 {
		return dst
	}
	h := x.heads[x.slot(key)]
	start := len(dst)
	for ; h != 0 && len(dst)-start < limit; h = x.entries[h-1].prev {
		dst = append(dst, x.entries[h-1].point)
	}
	got := dst[start:]
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	return dst
}
