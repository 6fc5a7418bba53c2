package biometrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBeyondSegmentNeverSkipsANearSegment: the box test that lets the
// replay and loop searches skip a segment says "beyond" only for segments
// segmentDist2 puts farther than the radius, so the searches keep every
// match they kept before it. Points are drawn from a few centimetres
// around each other, where the two answers meet, and the test also
// checks that the box does skip most far segments (or it saves nothing).
func TestBeyondSegmentNeverSkipsANearSegment(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	point := func(c *motionPoint, spread float64) motionPoint {
		var p motionPoint
		for i := range p {
			p[i] = c[i] + float32((rng.Float64()-0.5)*spread)
		}
		return p
	}
	var skipped, far int
	for range 200_000 {
		var origin motionPoint
		a := point(&origin, 0.5)
		b := point(&a, 0.1*rng.Float64())
		p := point(&a, 0.2*rng.Float64())
		r := 0.002 + 0.03*rng.Float64()
		d2 := segmentDist2(&p, &a, &b)
		beyond := beyondSegment(&p, &a, &b, r)
		if beyond && d2 <= r*r {
			t.Fatalf("p %v, segment %v–%v: skipped at distance %.9f within radius %.9f", p, a, b, math.Sqrt(d2), r)
		}
		if d2 > 4*r*r {
			far++
			if beyond {
				skipped++
			}
		}
	}
	if far == 0 || float64(skipped) < 0.5*float64(far) {
		t.Fatalf("the box skipped %d of %d segments farther than twice the radius", skipped, far)
	}
}

// TestCauchyScoreIsTheSumOfLogs: rawScores sums the Cauchy terms as the
// log of a running product; it gives the plain sum of log1p up to
// rounding, for whitened vectors of every scale a window can have, from
// nearly equal to wildly apart, with non-finite values propagated.
func TestCauchyScoreIsTheSumOfLogs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	plain := func(y, tm []float64) float64 {
		var s float64
		for i := range y {
			e := (y[i] - tm[i]) / cauchyScale
			s -= math.Log1p(e * e)
		}
		return s / float64(len(y))
	}
	for trial := range 20_000 {
		scale := math.Pow(10, float64(trial%14)-4) // 1e-4 … 1e9
		y, tm := make([]float64, NumCoreFeatures), make([]float64, NumCoreFeatures)
		for i := range y {
			y[i], tm[i] = rng.NormFloat64()*scale, rng.NormFloat64()*scale
		}
		if trial%97 == 0 {
			y[rng.IntN(len(y))] = 1e200 // a term too large for the product
		}
		_, got := rawScores(y, tm)
		want := plain(y, tm)
		if math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Fatalf("scale %g: Cauchy score %.17g, the sum of logs gives %.17g", scale, got, want)
		}
	}
	y, tm := make([]float64, NumCoreFeatures), make([]float64, NumCoreFeatures)
	y[3] = math.NaN()
	if _, got := rawScores(y, tm); !math.IsNaN(got) {
		t.Fatalf("a NaN feature scored %v, want NaN", got)
	}
	y[3] = math.Inf(1)
	if _, got := rawScores(y, tm); !math.IsInf(got, -1) {
		t.Fatalf("an infinite feature scored %v, want -Inf", got)
	}
}

// rotate applies the quaternion q (x, y, z, w) to v the textbook way,
// v + w·t + u×t with t = 2u×v: the reference basisOf is checked against.
func rotate(q [4]float32, v vec3) vec3 {
	u := vec3{float64(q[0]), float64(q[1]), float64(q[2])}
	w := float64(q[3])
	t := cross(u, v).scale(2)
	r := cross(u, t)
	return vec3{v[0] + w*t[0] + r[0], v[1] + w*t[1] + r[1], v[2] + w*t[2] + r[2]}
}

// TestBasisIsRotate: a sample's axes and head-relative controller vectors,
// taken from the rotation's basis, are the quaternion rotations they
// replace, up to rounding, for unit quaternions and for the slightly
// non-unit ones float32 frames carry.
func TestBasisIsRotate(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	quat := func() [4]float32 {
		var q [4]float64
		var n float64
		for i := range q {
			q[i] = rng.NormFloat64()
			n += q[i] * q[i]
		}
		n = math.Sqrt(n) * (1 + 1e-3*(rng.Float64()-0.5))
		return [4]float32{float32(q[0] / n), float32(q[1] / n), float32(q[2] / n), float32(q[3] / n)}
	}
	near := func(what string, got, want vec3) {
		t.Helper()
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Fatalf("%s: %v, rotation gives %v", what, got, want)
			}
		}
	}
	for range 10_000 {
		q, h := quat(), quat()
		b, hb := basisOf(q), basisOf(h)
		near("forward", b.forward(), rotate(q, axisForward))
		near("up", b.up(), rotate(q, axisUp))
		near("right", b.right(), rotate(q, axisRight))
		conj := [4]float32{-h[0], -h[1], -h[2], h[3]}
		v := vec3{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		near("inverse", hb.inverse(v), rotate(conj, v))
	}
}

// nearestReadingBothEnds is the registry's nearest-point search as it was
// before segmentReach: every candidate's two segments are measured, their
// other ends read from the generation's array.
func (r *replayRegistry) nearestReadingBothEnds(stream, ownIdx uint32, p *motionPoint) match {
	var m match
	var buf [maxCandidates]int32
	for _, g := range r.gens {
		if g == nil {
			continue
		}
		for grid := range g.grids {
			for _, ci := range g.grids[grid].newest(buf[:0], r.key(p, grid), maxCandidates) {
				sp := &g.points[ci]
				if sp.stream == stream && sp.idx+ownExclusionPoints > ownIdx {
					continue
				}
				d := pointDist2(p, &sp.p) / r.tol2
				if sp.next >= 0 {
					d = min(d, r.segmentFit(p, &sp.p, &g.points[sp.next].p))
				}
				if sp.prev >= 0 {
					d = min(d, r.segmentFit(p, &g.points[sp.prev].p, &sp.p))
				}
				if d <= 1 {
					m.offer(streamPoint{stream: sp.stream, idx: sp.idx, fit: d})
				}
			}
		}
	}
	return m
}

// TestSegmentReachKeepsEveryMatch: ruling segments out by their stored
// lengths finds, for every probe, exactly the matches (streams, points and
// fits) that measuring every segment found, on a crowd of slow and fast
// hands with gaps in their paths, probed on, near and off their paths.
func TestSegmentReachKeepsEveryMatch(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayRegistry(cfg)
	rng := rand.New(rand.NewPCG(13, 14))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const streams, steps = 60, 200
	paths := make([][]motionPoint, streams)
	for s := range paths {
		var p motionPoint
		for i := range p {
			p[i] = float32(0.2 * rng.NormFloat64())
		}
		speed := 0.005 + 0.1*rng.Float64() // metres per point: slow to a fast swing
		for range steps {
			for i := range p {
				p[i] += float32(speed * rng.NormFloat64())
			}
			paths[s] = append(paths[s], p)
		}
	}
	for i := range steps {
		for s := range paths {
			cont := []bool{i%37 != 0} // a gap now and then
			r.addIndexed(uint32(s), []uint32{uint32(i)}, paths[s][i:i+1], cont, now)
		}
		now = now.Add(100 * time.Millisecond)
	}
	matched := 0
	for range 20_000 {
		src := paths[rng.IntN(streams)]
		a, b := src[rng.IntN(steps-1)], src[rng.IntN(steps-1)]
		var probe motionPoint
		tt := float32(rng.Float64())
		noise := 0.015 * rng.Float64()
		for i := range probe {
			probe[i] = a[i] + tt*(b[i]-a[i])*float32(rng.IntN(2)) + float32(noise*rng.NormFloat64())
		}
		got := r.lookup(streams+1, 0, []motionPoint{probe}, nil)[0]
		want := r.nearestReadingBothEnds(streams+1, 0, &probe)
		if got != want {
			t.Fatalf("probe %v: %+v, measuring every segment gives %+v", probe, got, want)
		}
		if got.n > 0 {
			matched++
		}
	}
	if matched < 1000 {
		t.Fatalf("only %d probes matched anything: the test says nothing", matched)
	}
}

// TestLookupIsNearestOfEachPoint: a lookup, which reads the four cell
// chains of a point side by side and keeps the lists of cells a window's
// consecutive points share, finds for every point exactly what the search
// of one point at a time finds, on a registry whose crowded cells hold
// more points than a lookup reads, for windows of a walk through the
// crowd and of a stream's own recent path (which it must not match).
func TestLookupIsNearestOfEachPoint(t *testing.T) {
	r, walk := crowdedRegistry(t, 300, 1<<18, 21)
	rng := rand.New(rand.NewPCG(22, 23))
	full, shared, matched := 0, 0, 0
	for _, g := range r.gens {
		for grid := range g.grids {
			x := &g.grids[grid]
			for i, h := range x.heads {
				if h != 0 && len(x.newest(nil, x.keys[i], maxCandidates+1)) > maxCandidates {
					full++
				}
			}
		}
	}
	var out []match
	for w := range 400 {
		var rest, p motionPoint
		for c := range rest {
			rest[c] = float32(0.1 * rng.NormFloat64())
		}
		p = rest
		probe := make([]motionPoint, 20)
		for i := range probe {
			step := 0.025
			if w%4 == 0 {
				step = 0.002 // small steps: mostly the same cells
			}
			walk(&rest, &p, step)
			probe[i] = p
		}
		stream, own := uint32(1<<30), uint32(1<<20)
		if w%5 == 0 {
			// A stream already in the registry, looking up near its own
			// latest points: they are excluded, older ones are not.
			// Every other one is a stream that barely moves, whose cells
			// hold more of its points than a lookup reads.
			g := r.gens[0]
			sp := g.points[rng.IntN(len(g.points))]
			for w%10 == 0 && sp.stream%10 != 1 {
				sp = g.points[rng.IntN(len(g.points))]
			}
			stream, own = sp.stream, sp.idx+uint32(rng.IntN(2*ownExclusionPoints))
			for i := range probe {
				probe[i] = sp.p
				probe[i][i%6] += float32(0.003 * rng.NormFloat64())
			}
		}
		out = r.lookup(stream, own, probe, out)
		for i := range probe {
			want := r.nearestReadingBothEnds(stream, own, &probe[i])
			if out[i] != want {
				t.Fatalf("window %d point %d: lookup gives %+v, one point at a time %+v", w, i, out[i], want)
			}
			if i > 0 && r.key(&probe[i], 0) == r.key(&probe[i-1], 0) {
				shared++
			}
			if out[i].n > 0 {
				matched++
			}
		}
	}
	if full == 0 || shared < 500 || matched < 500 {
		t.Fatalf("%d cells hold more than a lookup reads, %d points share a cell with the one before, %d matched: the test says too little", full, shared, matched)
	}
}

// loopShareOneProbeAtATime is the stream's loop search as it was before
// loopShare went through the history once for all probe points: the
// reference it is tested against.
func (l *liveState) loopShareOneProbeAtATime(probe []motionPoint, idx []uint32) float64 {
	n := len(l.history)
	if n < 2 {
		return 0
	}
	tol2 := l.cfg.ReplayTolerance * l.cfg.ReplayTolerance / 4
	tol := math.Sqrt(tol2)
	at := func(i int) *historyPoint { return &l.history[(l.hstart+i)%n] }
	l.matches = l.matches[:0]
	for j := range probe {
		var m match
		for i := 1; i < n; i++ {
			a, b := at(i-1), at(i)
			if b.idx+loopMinLag > idx[j] || !b.contiguous || beyondSegment(&probe[j], &a.p, &b.p, tol) {
				continue
			}
			if d := segmentDist2(&probe[j], &a.p, &b.p); d <= tol2 {
				m.offer(streamPoint{idx: b.idx, fit: d / tol2})
			}
		}
		l.matches = append(l.matches, m)
	}
	return sequenceShare(l.matches, idx)
}

// TestLoopShareIsOneProbeAtATime: the loop search that goes through the
// history once finds for every probe point the matches (points and fits)
// the search of one probe point at a time found, and the same share, on
// looped motion repeated exactly, nearly and not at all, with gaps.
func TestLoopShareIsOneProbeAtATime(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(41, 42))
	looped := 0
	for trial := range 400 {
		l := newLiveState(cfg)
		period := 8 + rng.IntN(20)
		if trial%5 == 0 {
			period = 1000 + rng.IntN(1000) // slow: points within the tolerance of the ones before
		}
		noise := []float64{0, 0.001, 0.004, 0.02}[trial%4]
		var phase [6]float64
		for c := range phase {
			phase[c] = 2 * math.Pi * rng.Float64()
		}
		at := func(k int) motionPoint {
			var p motionPoint
			for c := range p {
				p[c] = float32(0.1*math.Sin(2*math.Pi*float64(k)/float64(period)+phase[c]) + noise*rng.NormFloat64())
			}
			return p
		}
		k := 0
		for range historyPoints + rng.IntN(60) {
			l.remember(historyPoint{p: at(k), idx: uint32(k), contiguous: k%23 != 0})
			k++
		}
		// As in a window, the probe's first half is the newest history.
		probe := make([]motionPoint, 20)
		idx := make([]uint32, len(probe))
		k -= 10
		for j := range probe {
			probe[j], idx[j] = at(k), uint32(k)
			k++
		}
		got := l.loopShare(probe, idx)
		gotMatches := slices.Clone(l.matches)
		want := l.loopShareOneProbeAtATime(probe, idx)
		if got != want || !slices.Equal(gotMatches, l.matches) {
			t.Fatalf("trial %d: share %v, matches %+v; one probe at a time: %v, %+v", trial, got, gotMatches, want, l.matches)
		}
		if got >= loopShare {
			looped++
		}
	}
	if looped < 50 || looped > 350 {
		t.Fatalf("%d of 400 trials looped: the test says too little", looped)
	}
}
