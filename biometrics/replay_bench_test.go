package biometrics

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// BenchmarkReplayRegistryMemory is the heap the replay registry holds per
// stored point, filled to its bound by many streams' motion (a random walk
// of both hands, about 5 cm between points a tenth of a second apart, so
// that some segments are filed along the cells they cross, as a moving
// hand's are), and the cost of filing a point. Run it with -benchtime 1x.
func BenchmarkReplayRegistryMemory(b *testing.B) {
	const streams, maxPoints = 500, 1 << 18
	cfg, err := Config{ReplayMaxPoints: maxPoints}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	walks := make([]motionPoint, streams)
	var perPoint, perFile, cells float64
	for range b.N {
		r := newReplayRegistry(cfg)
		before := heapInUse()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		idx := make([]uint32, 1)
		contiguous := []bool{true}
		pts := make([]motionPoint, 1)
		start := time.Now()
		filed := 0
		// Fill until a generation has rotated, so that both are full.
		for n := uint32(0); r.gens[1] == nil || len(r.gens[0].points) < maxPoints/2-streams; n++ {
			for s := range walks {
				for c := range walks[s] {
					walks[s][c] += float32(0.02 * rng.NormFloat64())
				}
				idx[0], pts[0] = n, walks[s]
				r.addIndexed(uint32(s+1), idx, pts, contiguous, clock)
				filed++
			}
			clock = clock.Add(100 * time.Millisecond)
		}
		perFile = float64(time.Since(start).Nanoseconds()) / float64(filed)
		held := len(r.gens[0].points) + len(r.gens[1].points)
		perPoint = float64(heapInUse()-before) / float64(held)
		entries := 0
		for _, g := range r.gens {
			for i := range g.grids {
				entries += len(g.grids[i].entries)
			}
		}
		cells = float64(entries) / float64(held)
		runtime.KeepAlive(r)
	}
	b.ReportMetric(perPoint, "heap-B/point")
	b.ReportMetric(perFile, "ns/point-filed")
	b.ReportMetric(cells, "cells/point")
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
