package biometrics

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkPathCells is what sharing path cells adds, in its two parts:
// hashing one filed point with the segment leading to it (a stream files
// up to 10 a second), and judging one 2 s window of 20 points against a
// peer's cells (once a second per stream, when the node's own registry
// finds nothing). Per frame at 72 Hz that is at most 10/72 of the first
// plus 1/72 of the second.
func BenchmarkPathCells(b *testing.B) {
	h, err := newCellHasher(make([]byte, 32), 2*DefaultReplayTolerance)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	walk := make([]motionPoint, 4096)
	for i := 1; i < len(walk); i++ {
		for c := range walk[i] {
			// About 3 cm per tenth of a second: a hand at 0.3 m/s.
			walk[i][c] = walk[i-1][c] + float32(0.012*rng.NormFloat64())
		}
	}
	b.Run("file-point", func(b *testing.B) {
		var dst []pathEntry
		b.ReportAllocs()
		for i := range b.N {
			k := 1 + i%(len(walk)-1)
			dst = h.cellsOf(dst[:0], 1, uint32(k), &walk[k], &walk[k-1])
		}
	})
	retiredKey := make([]byte, 32)
	retiredKey[0] = 1
	retired, err := newCellHasher(retiredKey, 2*DefaultReplayTolerance)
	if err != nil {
		b.Fatal(err)
	}
	// judge-window looks a window up under the key alone;
	// judge-window-rotating under the key and one a rotation of the
	// template key retired, as a node does until the retired key leaves
	// its key file.
	for _, c := range []struct {
		name   string
		lookup []*cellHasher
	}{{"judge-window", []*cellHasher{h}}, {"judge-window-rotating", []*cellHasher{h, retired}}} {
		b.Run(c.name, func(b *testing.B) {
			judgeWindows(b, &peerPaths{hasher: h, lookup: c.lookup, history: DefaultReplayHistory, maxCells: DefaultReplayMaxPoints}, walk)
		})
	}
}

// judgeWindows files a peer's walk into pp and judges 20-point windows of
// it.
func judgeWindows(b *testing.B, pp *peerPaths, walk []motionPoint) {
	h := pp.hasher
	{
		var all []pathEntry
		for k := 1; k < len(walk); k++ {
			all = h.cellsOf(all, 7, uint32(k), &walk[k], &walk[k-1])
		}
		pp.add("peer", PathBatch{entries: all}, time.Unix(0, 0))
		idx := make([]uint32, 20)
		for i := range idx {
			idx[i] = uint32(i)
		}
		var scratch [][]peerRef
		b.ReportAllocs()
		for i := range b.N {
			start := (i * 20) % (len(walk) - 20)
			_, scratch = pp.sequenceShare(walk[start:start+20], idx, scratch)
		}
	}
}
