package biometrics

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// sameMatches reports whether a and b found the same places on the same
// streams, in whatever order their entries sit.
func sameMatches(a, b match) bool {
	if a.n != b.n {
		return false
	}
	x, y := a.at[:a.n], b.at[:b.n]
	byStream := func(p, q streamPoint) int { return int(int64(p.stream) - int64(q.stream)) }
	slices.SortFunc(x, byStream)
	slices.SortFunc(y, byStream)
	return slices.Equal(x, y)
}

// memoProbe is a stream looked up window after window, as the realm's
// streams are, with the motion of one kind of stream.
type memoProbe struct {
	stream  uint32
	kind    int
	source  int // the background walker it copies
	lag     int // ticks behind what it copies
	speed   float64
	pts     []motionPoint
	filed   int
	memo    replayMemo
	windows int
}

// TestLookupReusingIsTheFullLookup: a stream's lookup that starts from its
// previous window's results finds, for every point of every window,
// exactly what reading everything again finds (streams, points and fits),
// on a crowded registry that other streams keep filing between the
// windows and whose generations rotate several times; for people moving
// on their own, verbatim, noisy and time-warped replays of streams still
// moving (whose newest points get their next between two windows), copies
// of streams that barely move (whose cells fill faster than a lookup
// reads), streams retracing their own motion at the edge of what is too
// recent to count, windows not judged, and points that come back changed.
func TestLookupReusingIsTheFullLookup(t *testing.T) {
	r, walk := crowdedRegistry(t, 300, 1<<16, 31)
	rng := rand.New(rand.NewPCG(32, 33))
	clock := r.gens[0].started.Add(time.Minute)

	const walkers, ticks = 200, 700
	rests := make([]motionPoint, walkers)
	paths := make([][]motionPoint, walkers)
	for s := range rests {
		for c := range rests[s] {
			rests[s][c] = float32(0.1 * rng.NormFloat64())
		}
		paths[s] = []motionPoint{rests[s]}
	}
	step := func(s int) float64 {
		if s%10 == 0 {
			return 0.002 // barely moving: fills a few cells alone
		}
		return 0.025
	}
	probes := make([]*memoProbe, 48)
	for i := range probes {
		p := &memoProbe{stream: uint32(5000 + i), kind: i % 6, source: rng.IntN(walkers), lag: 2 + rng.IntN(30), speed: 1}
		switch p.kind {
		case 2: // time-warped
			p.speed = []float64{0.5, 0.8, 1.25, 2}[i%4]
			p.lag = 45 + rng.IntN(20)
		case 3: // a copy of a stream that barely moves
			p.source = 10 * rng.IntN(walkers/10)
		}
		probes[i] = p
	}
	var rest motionPoint
	var looked, matched, windows int
	rotations := r.rotations
	idx, one, cont := make([]uint32, 1), make([]motionPoint, 1), make([]bool, 1)
	for tick := 1; tick <= ticks; tick++ {
		for s := range paths {
			at := paths[s][len(paths[s])-1]
			walk(&rests[s], &at, step(s))
			paths[s] = append(paths[s], at)
			idx[0], one[0], cont[0] = uint32(tick), at, tick%53 != 0
			r.addIndexed(uint32(1000+s), idx, one, cont, clock)
		}
		for _, p := range probes {
			var next motionPoint
			src := paths[p.source]
			switch p.kind {
			case 0: // a person of their own
				if len(p.pts) == 0 {
					for c := range rest {
						rest[c] = float32(0.1 * rng.NormFloat64())
					}
					next = rest
				} else {
					next = p.pts[len(p.pts)-1]
					walk(&rest, &next, 0.025)
				}
			case 1, 3: // verbatim
				next = src[max(0, len(src)-1-p.lag)]
			case 4: // noisy
				next = src[max(0, len(src)-1-p.lag)]
				for c := range next {
					next[c] += float32(0.003 * rng.NormFloat64())
				}
			case 2: // time-warped, starting again every 40 ticks
				u := float64(len(src)-1-p.lag) + (p.speed-1)*float64(tick%40)
				u = min(max(u, 0), float64(len(src)-1))
				k := min(int(u), len(src)-2)
				f := float32(u - float64(k))
				for c := range next {
					next[c] = src[k][c] + f*(src[k+1][c]-src[k][c])
				}
			case 5: // its own motion again, at the edge of too recent
				if n := len(p.pts); n > ownExclusionPoints+10 {
					next = p.pts[n-ownExclusionPoints+3-int(p.stream%8)]
					next[p.stream%6] += float32(0.001 * rng.NormFloat64())
				} else {
					next = src[len(src)-1]
				}
			}
			p.pts = append(p.pts, next)
			if tick%10 != int(p.stream%10) || len(p.pts) < 20 {
				continue
			}
			p.windows++
			n := len(p.pts)
			probe := slices.Clone(p.pts[n-20:])
			probeIdx := make([]uint32, 20)
			for j := range probeIdx {
				probeIdx[j] = uint32(n - 20 + j)
			}
			if p.windows%11 == 5 {
				// A point that comes back changed is looked up afresh.
				probe[3][0] += 0.01
			}
			if p.windows%7 != 3 { // every seventh window is not judged
				own := probeIdx[19]
				got := r.lookupReusing(&p.memo, p.stream, own, probe, probeIdx, 10, nil)
				want := r.lookup(p.stream, own, probe, nil)
				for j := range want {
					if !sameMatches(got[j], want[j]) {
						t.Fatalf("tick %d, stream %d (kind %d), window %d, point %d: reusing gives %+v, reading everything %+v",
							tick, p.stream, p.kind, p.windows, j, got[j], want[j])
					}
					if want[j].n > 0 {
						matched++
					}
				}
				looked += len(probe)
				windows++
			}
			fresh := p.pts[p.filed:]
			freshIdx := make([]uint32, len(fresh))
			freshCont := make([]bool, len(fresh))
			for j := range fresh {
				freshIdx[j] = uint32(p.filed + j)
				freshCont[j] = j > 0 || p.filed > 0
			}
			r.addIndexed(p.stream, freshIdx, fresh, freshCont, clock)
			p.filed = len(p.pts)
		}
		clock = clock.Add(100 * time.Millisecond)
	}
	t.Logf("%d windows, %d points: %d matched; %d of %d taken from the memo; %d rotations",
		windows, looked, matched, r.memoReused, r.memoLooked, r.rotations-rotations)
	if r.rotations-rotations < 3 || matched < looked/4 || r.memoReused < uint64(looked)/4 {
		t.Fatalf("%d rotations, %d of %d points matched, %d reused: the test says too little",
			r.rotations-rotations, matched, looked, r.memoReused)
	}
}

// TestRankedMatchIgnoresOfferOrder: a ranked match ends the same whatever
// the order of its offers, ties of fit within a stream and between
// streams included, and offered in reading order it keeps what the plain
// match keeps when no two streams tie for the worst of four.
func TestRankedMatchIgnoresOfferOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	type offer struct {
		sp    streamPoint
		order uint8
	}
	tiesOfWorst := 0
	for trial := range 5000 {
		offers := make([]offer, 2+rng.IntN(14))
		for i := range offers {
			// Few streams and few fits, so that ties are common; each
			// candidate (order) belongs to one stream and point.
			order := uint8(i*7 + rng.IntN(7))
			offers[i] = offer{sp: streamPoint{stream: uint32(rng.IntN(6)), idx: uint32(order), fit: float64(rng.IntN(4)) / 4}, order: order}
		}
		var inOrder rankedMatch
		var plain match
		for _, o := range offers {
			inOrder.offer(o.sp, o.order)
			plain.offer(o.sp)
		}
		for range 4 {
			rng.Shuffle(len(offers), func(i, j int) { offers[i], offers[j] = offers[j], offers[i] })
			var shuffled rankedMatch
			for _, o := range offers {
				shuffled.offer(o.sp, o.order)
			}
			if !sameMatches(shuffled.m, inOrder.m) {
				t.Fatalf("trial %d: offered %+v in another order gives %+v, in reading order %+v", trial, offers, shuffled.m, inOrder.m)
			}
		}
		if !sameMatches(plain, inOrder.m) {
			if !worstTied(plain, inOrder.m) {
				t.Fatalf("trial %d: ranked %+v, plain %+v, and no tie for the worst", trial, inOrder.m, plain)
			}
			tiesOfWorst++
		}
	}
	t.Logf("%d of 5000 trials differ from the plain match, each by a tie for the worst of four", tiesOfWorst)
}

// worstTied reports whether a and b differ only in which streams they
// keep at their worst fit, tied: the one case where a ranked match may
// keep another stream than match.offer, which evicts the first of the
// streams tied for the worst of four rather than the latest read.
func worstTied(a, b match) bool {
	if a.n != maxMatchStreams || b.n != maxMatchStreams {
		return false
	}
	fits := func(m match) (f []float64) {
		for _, sp := range m.at[:m.n] {
			f = append(f, sp.fit)
		}
		slices.Sort(f)
		return f
	}
	fa := fits(a)
	if !slices.Equal(fa, fits(b)) {
		return false
	}
	worst := fa[len(fa)-1]
	below := func(m match) (out []streamPoint) {
		for _, sp := range m.at[:m.n] {
			if sp.fit < worst {
				out = append(out, sp)
			}
		}
		slices.SortFunc(out, func(p, q streamPoint) int { return int(int64(p.stream) - int64(q.stream)) })
		return out
	}
	return slices.Equal(below(a), below(b))
}
