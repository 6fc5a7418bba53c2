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

// crowdedRegistry is a registry filled to maxPoints by the motion of many
// streams, each hand wandering around its own resting place (a random walk
// pulled back towards it, about 6 cm between points a tenth of a second
// apart; one stream in ten barely moves and fills a few cells alone), so
// that cells hold more points than a lookup reads, as on a busy node. walk
// gives a new stream's next point in the same way, with steps of step.
func crowdedRegistry(tb testing.TB, streams, maxPoints int, seed uint64) (r *replayRegistry, walk func(rest, p *motionPoint, step float64)) {
	tb.Helper()
	cfg, err := Config{ReplayMaxPoints: maxPoints}.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	r = newReplayRegistry(cfg)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	walk = func(rest, p *motionPoint, step float64) {
		for c := range p {
			p[c] = rest[c] + 0.95*(p[c]-rest[c]) + float32(step*rng.NormFloat64())
		}
	}
	rests := make([]motionPoint, streams)
	at := make([]motionPoint, streams)
	for s := range rests {
		for c := range rests[s] {
			rests[s][c] = float32(0.1 * rng.NormFloat64())
		}
		at[s] = rests[s]
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	idx, pts, contiguous := make([]uint32, 1), make([]motionPoint, 1), []bool{true}
	for n := uint32(0); r.gens[1] == nil || len(r.gens[0].points) < maxPoints/2-streams; n++ {
		for s := range at {
			step := 0.025
			if s%10 == 0 {
				step = 0.002
			}
			walk(&rests[s], &at[s], step)
			idx[0], pts[0] = n, at[s]
			r.addIndexed(uint32(s+1), idx, pts, contiguous, clock)
		}
		clock = clock.Add(100 * time.Millisecond)
	}
	return r, walk
}

// BenchmarkReplayLookup is the replay registry's part of judging one
// window (20 moving points) on a node whose registry is full, as it is
// after a few minutes of a thousand streams: the candidates of each point
// read from four cells, and their distances measured.
func BenchmarkReplayLookup(b *testing.B) {
	r, walk := crowdedRegistry(b, 1000, DefaultReplayMaxPoints, 5)
	const windows, perWindow = 256, 20
	rng := rand.New(rand.NewPCG(7, 8))
	probes := make([][]motionPoint, windows)
	for w := range probes {
		// Each window another person's, resting somewhere in the crowd.
		var rest motionPoint
		for c := range rest {
			rest[c] = float32(0.1 * rng.NormFloat64())
		}
		p := rest
		for range perWindow {
			walk(&rest, &p, 0.025)
			probes[w] = append(probes[w], p)
		}
	}
	var out []match
	matched := 0
	i := 0
	for b.Loop() {
		out = r.lookup(1<<30, 1<<20, probes[i%windows], out)
		for _, m := range out {
			matched += m.n
		}
		i++
	}
	b.ReportMetric(float64(matched)/float64(i*perWindow), "matches/point")
}

// BenchmarkReplayLookupWindows is the replay registry's part of judging
// windows as the realm judges them: a thousand streams in turn, each
// window of 20 moving points overlapping the stream's previous one by
// half, and each stream filing its 10 new points after its lookup, so
// that between two windows of a stream the others file a second of
// motion. lookup=full reads every point's candidates afresh;
// lookup=reusing starts from the stream's previous window (replayMemo).
// Filing is not timed.
func BenchmarkReplayLookupWindows(b *testing.B) {
	for _, mode := range []string{"full", "reusing"} {
		b.Run("lookup="+mode, func(b *testing.B) {
			r, walk := crowdedRegistry(b, 1000, DefaultReplayMaxPoints, 5)
			clock := r.gens[0].started.Add(time.Minute)
			const streams, perWindow, hop = 1000, 20, 10
			rng := rand.New(rand.NewPCG(9, 10))
			type windowed struct {
				rest, at motionPoint
				pts      []motionPoint
				memo     replayMemo
			}
			ss := make([]windowed, streams)
			for s := range ss {
				for c := range ss[s].rest {
					ss[s].rest[c] = float32(0.1 * rng.NormFloat64())
				}
				ss[s].at = ss[s].rest
				for range perWindow - hop {
					walk(&ss[s].rest, &ss[s].at, 0.025)
					ss[s].pts = append(ss[s].pts, ss[s].at)
				}
			}
			var out []match
			idx := make([]uint32, perWindow)
			cont := make([]bool, hop)
			for i := range cont {
				cont[i] = true
			}
			matched, windows := 0, 0
			for b.Loop() {
				s := windows % streams
				w := &ss[s]
				for range hop {
					walk(&w.rest, &w.at, 0.025)
					w.pts = append(w.pts, w.at)
				}
				w.pts = w.pts[len(w.pts)-perWindow:]
				first := uint32(windows/streams*hop) + 1
				for j := range idx {
					idx[j] = first + uint32(j)
				}
				stream := uint32(1<<20 + s)
				if mode == "full" {
					out = r.lookup(stream, idx[perWindow-1], w.pts, out)
				} else {
					out = r.lookupReusing(&w.memo, stream, idx[perWindow-1], w.pts, idx, hop, out)
				}
				for _, m := range out {
					matched += m.n
				}
				b.StopTimer()
				r.addIndexed(stream, idx[hop:], w.pts[hop:], cont, clock)
				clock = clock.Add(time.Millisecond)
				b.StartTimer()
				windows++
			}
			b.ReportMetric(float64(matched)/float64(windows*perWindow), "matches/point")
			if mode == "reusing" {
				b.ReportMetric(float64(r.memoReused)/float64(max(r.memoLooked, 1)), "reused/point")
			}
		})
	}
}

// BenchmarkLoopShare is a stream's search of its own recent motion for a
// loop, once per judged window: 20 probe points, half of them the newest
// of the history, against a full history of a hand wandering as in
// crowdedRegistry.
func BenchmarkLoopShare(b *testing.B) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(51, 52))
	var rest, p motionPoint
	var path []motionPoint
	for range historyPoints + 10 {
		for c := range p {
			p[c] = rest[c] + 0.95*(p[c]-rest[c]) + float32(0.025*rng.NormFloat64())
		}
		path = append(path, p)
	}
	l := newLiveState(cfg)
	for k := range historyPoints {
		l.remember(historyPoint{p: path[k], idx: uint32(k), contiguous: true})
	}
	probe := path[len(path)-20:]
	idx := make([]uint32, len(probe))
	for j := range idx {
		idx[j] = uint32(len(path) - 20 + j)
	}
	var share float64
	for b.Loop() {
		share += l.loopShare(probe, idx)
	}
	b.ReportMetric(share/float64(b.N), "share")
}
