package biometrics

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A motion point is both hands' positions relative to the head in its yaw
// frame: invariant to where in the world and which way a replay is played,
// and specific enough that two people, or one person twice, never trace the
// same path in it to within a centimetre for seconds on end.
type motionPoint [6]float32

func pointDist2(a, b *motionPoint) float64 {
	var s float64
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return s
}

// segmentDist2 is the squared distance from p to the segment ab. Comparing
// with segments rather than stored points is what catches time-warped
// replays: played faster or slower, the copy's samples fall between the
// original's, but on the same path.
func segmentDist2(p, a, b *motionPoint) float64 {
	var ab, ap float64
	for i := range p {
		d := float64(b[i] - a[i])
		ab += d * d
		ap += float64(p[i]-a[i]) * d
	}
	t := 0.0
	if ab > 0 {
		t = clamp(ap/ab, 0, 1)
	}
	var s float64
	for i := range p {
		d := float64(p[i]) - (float64(a[i]) + t*float64(b[i]-a[i]))
		s += d * d
	}
	return s
}

// beyondSegment reports whether p lies farther than r from every point of
// the segment ab, by the box around the segment: one coordinate outside
// the box grown by r proves it, and usually the first coordinate does, for
// a few comparisons instead of the projection segmentDist2 computes. It
// never says true for a segment within r, so a search that uses it to skip
// segments finds exactly what it found without it; r carries a margin of
// a millionth against the rounding of segmentDist2's own arithmetic.
func beyondSegment(p, a, b *motionPoint, r float64) bool {
	r *= 1 + 1e-6
	for i := range p {
		lo, hi := float64(a[i]), float64(b[i])
		if lo > hi {
			lo, hi = hi, lo
		}
		if x := float64(p[i]); x < lo-r || x > hi+r {
			return true
		}
	}
	return false
}

// Points enter the registry at 10 Hz, and only while the hands move: a
// resting pose is shared by many people and fingerprints nobody.
const (
	pointEverySamples = 5 // at the default 50 Hz
	minPointSpeed     = 0.05
	// A window is judged only if it has this many moving points (of the
	// 20 in a 2 s window) and its hands travelled this far.
	minJudgedPoints = 8
	minJudgedPath   = 0.1
	// A window is a copy when this share of its consecutive moving points
	// follow one earlier path in order.
	replayMatchShare = 0.6
	// Own motion younger than this is not earlier motion but the window's
	// own overlap.
	ownExclusionPoints = 100
	maxCandidates      = 32
	// chordAllowance: extra tolerance per metre of segment length.
	chordAllowance = 0.15
)

type storedPoint struct {
	p      motionPoint
	stream uint32
	idx    uint32 // the stream's point counter
	prev   int32  // the same stream's previous point in this generation, or -1
	next   int32
	// lenPrev and lenNext are the lengths of the segments to prev and
	// next, so that a lookup can rule a segment out from the point alone
	// (segmentReach) without reading the other end, which lies anywhere in
	// the generation's array.
	lenPrev, lenNext float32
}

type replayGeneration struct {
	started time.Time
	points  []storedPoint
	grids   [2]cellIndex
	last    map[uint32]int32 // each stream's latest point in this generation
}

func newGeneration(at time.Time) *replayGeneration {
	return &replayGeneration{started: at, last: map[uint32]int32{}}
}

// reset empties g for reuse as the current generation, keeping its arrays.
func (g *replayGeneration) reset(at time.Time) {
	g.started = at
	g.points = g.points[:0]
	for i := range g.grids {
		g.grids[i].reset()
	}
	clear(g.last)
}

// replayRegistry remembers recent motion of every stream on the node. It
// forgets by generations: two of them, each covering half the history, the
// older emptied whole and filled again as the current one, so that
// forgetting costs nothing per point and allocates nothing once the
// generations have grown to the node's load.
type replayRegistry struct {
	mu        sync.Mutex
	cell      float64
	tol2      float64
	history   time.Duration
	maxPoints int
	gens      [2]*replayGeneration // [0] current, [1] previous
	// rotations counts the generations started, so that a stream's memo
	// of its last lookup (replayMemo) knows whether it still applies.
	rotations uint64
	// fullLookups makes every lookup read everything, for the tests that
	// compare the two.
	fullLookups bool
	// memoLooked and memoReused count the points lookupReusing looked up
	// and those it took from the memo, for tests and benchmarks.
	memoLooked, memoReused uint64
	// peers, when set (Engine.SharePaths), shares this node's cells and
	// holds the other nodes'.
	peers atomic.Pointer[peerPaths]
}

func newReplayRegistry(cfg Config) *replayRegistry {
	return &replayRegistry{
		cell:      4 * cfg.ReplayTolerance,
		tol2:      cfg.ReplayTolerance * cfg.ReplayTolerance,
		history:   cfg.ReplayHistory,
		maxPoints: cfg.ReplayMaxPoints,
	}
}

func (r *replayRegistry) key(p *motionPoint, grid int) uint64 {
	off := 0.5 * float64(grid)
	var h uint64 = 14695981039346656037
	for _, v := range p {
		q := int64(math.Floor(float64(v)/r.cell + off))
		h ^= uint64(q)
		h *= 1099511628211
	}
	return h
}

func (r *replayRegistry) rotate(now time.Time) {
	if r.gens[0] == nil {
		r.gens[0] = newGeneration(now)
		r.rotations++
		return
	}
	half := r.history / 2
	full := r.maxPoints > 0 && len(r.gens[0].points) >= r.maxPoints/2
	if now.Sub(r.gens[0].started) >= half || full {
		// The generation dropped becomes the new one, arrays and all.
		next := r.gens[1]
		if next == nil {
			next = newGeneration(now)
		} else {
			next.reset(now)
		}
		r.gens[1], r.gens[0] = r.gens[0], next
		r.rotations++
	}
}

// match is where a probe point lies on earlier motion: the best place on
// each of up to maxMatchStreams streams. A path copied several times (the
// original, then replays of it) is on several streams at once.
type match struct {
	n  int
	at [maxMatchStreams]streamPoint
}

type streamPoint struct {
	stream uint32
	idx    uint32
	fit    float64
}

const maxMatchStreams = 4

func (m *match) offer(sp streamPoint) {
	for i := 0; i < m.n; i++ {
		if m.at[i].stream == sp.stream {
			if sp.fit < m.at[i].fit {
				m.at[i] = sp
			}
			return
		}
	}
	if m.n < maxMatchStreams {
		m.at[m.n] = sp
		m.n++
		return
	}
	worst := 0
	for i := 1; i < m.n; i++ {
		if m.at[i].fit > m.at[worst].fit {
			worst = i
		}
	}
	if sp.fit < m.at[worst].fit {
		m.at[worst] = sp
	}
}

// sequenceShare returns the share of consecutive probe point pairs that
// both lie on earlier motion of one stream, in the same order and at a
// plausible pace. Dense motion around a resting pose comes close to many
// earlier points, but only a copy follows one earlier path step by step.
func sequenceShare(m []match, probeIdx []uint32) float64 {
	if len(m) < 2 {
		return 0
	}
	good := 0
	for j := 1; j < len(m); j++ {
		gap := int64(probeIdx[j] - probeIdx[j-1])
		if followed(&m[j-1], &m[j], gap) {
			good++
		}
	}
	return float64(good) / float64(len(m)-1)
}

func followed(a, b *match, gap int64) bool {
	for i := 0; i < a.n; i++ {
		for k := 0; k < b.n; k++ {
			if a.at[i].stream != b.at[k].stream {
				continue
			}
			// A replay at 0.5x to 2x speed moves between 0 and 2 stored
			// points per probe point.
			step := int64(b.at[k].idx) - int64(a.at[i].idx)
			if step >= 0 && step <= 2*gap+1 {
				return true
			}
		}
	}
	return false
}

// lookup finds, for each probe point, the earlier motion of any stream it
// lies on (the stream's own latest points excepted), reading every
// point's candidates afresh.
func (r *replayRegistry) lookup(stream uint32, ownIdx uint32, probe []motionPoint, out []match) []match {
	r.mu.Lock()
	defer r.mu.Unlock()
	out = out[:0]
	var lists cellLists
	for i := range probe {
		r.candidates(&lists, &probe[i])
		var rm rankedMatch
		r.nearest(&rm, nil, &lists, stream, ownIdx, &probe[i])
		out = append(out, rm.m)
	}
	return out
}

// cellLists are the candidates of one probe point: for each generation and
// grid (list g*2+grid), the newest points filed under the point's cell,
// oldest first. They are kept from one probe point to the next, because a
// window's consecutive points often lie in the same cells, whose lists
// are then already read; the registry is locked for the whole lookup, so
// they cannot have changed.
type cellLists struct {
	read  [4]bool
	key   [4]uint64
	n     [4]int
	cands [4][maxCandidates]int32
}

// candidates reads into lists the candidates of p that it does not hold
// yet. A cell's points are a chain through the index's entries, each entry
// naming the one before, so reading a chain is one dependent memory read
// after another, nearly each a cache miss on a full registry; the four
// chains are read side by side, a step of each in turn, so that the
// processor waits for four reads at once instead of one after the other.
func (r *replayRegistry) candidates(lists *cellLists, p *motionPoint) {
	var keys [2]uint64
	for grid := range keys {
		keys[grid] = r.key(p, grid)
	}
	var index [4]*cellIndex
	var next [4]int32 // 1 + the entry to read next in list k, or 0
	for gi, g := range r.gens {
		for grid := range keys {
			k := 2*gi + grid
			if lists.read[k] && lists.key[k] == keys[grid] {
				continue
			}
			lists.read[k], lists.key[k], lists.n[k] = true, keys[grid], 0
			if g == nil || g.grids[grid].used == 0 {
				continue
			}
			index[k] = &g.grids[grid]
			next[k] = index[k].heads[index[k].slot(keys[grid])]
		}
	}
	for reading := true; reading; {
		reading = false
		for k := range next {
			if next[k] == 0 {
				continue
			}
			e := index[k].entries[next[k]-1]
			lists.cands[k][lists.n[k]] = e.point
			lists.n[k]++
			next[k] = e.prev
			if lists.n[k] == maxCandidates {
				next[k] = 0
			}
			reading = reading || next[k] != 0
		}
	}
	for k, x := range index {
		if x != nil {
			slices.Reverse(lists.cands[k][:lists.n[k]])
		}
	}
}

// nearest offers to rm where p lies on earlier motion among its candidates
// in lists, each offer ranked by where its candidate stands in the order
// the lists are read (candidateOrder). With open set, it also notes the
// candidates of the current generation that are their stream's newest
// point so far (no next yet), for a later lookup to test the segment to
// the next one, and the stream's own candidates left out as too recent
// (see pending).
// The distances to the candidates are measured first, in a loop of their
// own: the candidates lie anywhere in the generation's array, and a short
// loop lets the processor have several of them on their way from memory at
// once.
func (r *replayRegistry) nearest(rm *rankedMatch, open *pending, lists *cellLists, stream, ownIdx uint32, p *motionPoint) {
	var pd2s [maxCandidates]float64
	for gi, g := range r.gens {
		if g == nil {
			continue
		}
		for grid := range g.grids {
			k := 2*gi + grid
			cands := lists.cands[k][:lists.n[k]]
			for j, ci := range cands {
				pd2s[j] = pointDist2(p, &g.points[ci].p)
			}
			for j, ci := range cands {
				sp := &g.points[ci]
				if sp.stream == stream && open.tooRecent(sp.idx, ownIdx) {
					continue
				}
				order := candidateOrder(k, len(cands)-1-j)
				if open != nil && gi == 0 && sp.next < 0 {
					open.add(ci, order)
				}
				if d := r.fit(g, sp, pd2s[j], p); d <= 1 {
					rm.offer(streamPoint{stream: sp.stream, idx: sp.idx, fit: d}, order)
				}
			}
		}
	}
}

// fit is how well p lies on the stored point sp (at squared distance pd2
// from p) or the segments to its neighbours, relative to the tolerance.
func (r *replayRegistry) fit(g *replayGeneration, sp *storedPoint, pd2 float64, p *motionPoint) float64 {
	d := pd2 / r.tol2
	if sp.next >= 0 && r.segmentReach(pd2, sp.lenNext) {
		d = min(d, r.segmentFit(p, &sp.p, &g.points[sp.next].p))
	}
	if sp.prev >= 0 && r.segmentReach(pd2, sp.lenPrev) {
		d = min(d, r.segmentFit(p, &g.points[sp.prev].p, &sp.p))
	}
	return d
}

// segmentReach reports whether a segment of length l from a stored point
// at squared distance pd2 from p may come within its allowance of p
// (segmentFit at most 1). No point of the segment is nearer p than the
// stored point's distance less l, so when that is beyond the allowance
// (with a margin for rounding, and for l kept in float32) the segment's
// fit is above 1 and a lookup need not read its other end.
func (r *replayRegistry) segmentReach(pd2 float64, l float32) bool {
	reach := (math.Sqrt(r.tol2) + (1+chordAllowance)*float64(l)) * (1 + 1e-5)
	return pd2 <= reach*reach
}

// segmentFit is the squared distance from p to the segment ab relative to
// the tolerance, which grows with the segment's length: stored points are
// a tenth of a second apart, and a fast hand's path bows away from the
// straight line between them.
func (r *replayRegistry) segmentFit(p, a, b *motionPoint) float64 {
	allowed := math.Sqrt(r.tol2) + chordAllowance*math.Sqrt(pointDist2(a, b))
	if beyondSegment(p, a, b, allowed) {
		// Beyond the allowance: a fit above 1, which no caller keeps.
		return math.Inf(1)
	}
	return segmentDist2(p, a, b) / (allowed * allowed)
}

// addIndexed stores a stream's new points, each with its own number;
// contiguous[i] says whether point i directly follows the stream's previous
// point, so that a lookup can test the segment between them.
func (r *replayRegistry) addIndexed(stream uint32, idx []uint32, pts []motionPoint, contiguous []bool, now time.Time) {
	if r.history <= 0 || r.maxPoints == 0 {
		return
	}
	pp := r.peers.Load()
	var shared []pathEntry
	r.mu.Lock()
	r.rotate(now)
	g := r.gens[0]
	g.points = growPoints(g.points, len(pts), r.maxPoints/2)
	for i := range pts {
		at := int32(len(g.points))
		prev := int32(-1)
		var lenPrev float32
		if last, ok := g.last[stream]; ok && contiguous[i] {
			prev = last
			lenPrev = float32(math.Sqrt(pointDist2(&g.points[last].p, &pts[i])))
			g.points[last].next, g.points[last].lenNext = at, lenPrev
		}
		if pp != nil {
			var from *motionPoint
			if prev >= 0 {
				from = &g.points[prev].p
			}
			shared = pp.hasher.cellsOf(shared, stream, idx[i], &pts[i], from)
		}
		g.points = append(g.points, storedPoint{p: pts[i], stream: stream, idx: idx[i], prev: prev, next: -1, lenPrev: lenPrev})
		g.last[stream] = at
		for grid := range g.grids {
			g.grids[grid].add(r.key(&pts[i], grid), at)
		}
		if prev >= 0 {
			r.indexSegment(g, prev, &g.points[prev].p, &pts[i])
		}
	}
	r.mu.Unlock()
	if len(shared) > 0 {
		pp.published.Add(uint64(len(shared)))
		pp.publish(PathBatch{entries: shared, at: now})
	}
}

// growPoints makes room for n more points in a generation of at most
// bound points (it rotates at the first batch past it). append's own
// growth, 1.25× for large arrays, would leave up to a fifth of each
// generation's array unused once it reached the bound, and the array is
// kept for good (a generation is refilled in place).
func growPoints(points []storedPoint, n, bound int) []storedPoint {
	need := len(points) + n
	if need <= cap(points) {
		return points
	}
	c := 2 * cap(points)
	if cap(points) >= 1024 {
		c = cap(points) + cap(points)/4
	}
	c = max(need, min(c, bound))
	grown := make([]storedPoint, len(points), c)
	copy(grown, points)
	return grown
}

// maxSegmentSteps bounds how many cells along one segment are indexed:
// a segment longer than that many half-cells is a jump, not a path.
const maxSegmentSteps = 16

// indexSegment files the segment from a to b (starting at stored point
// from) under the cells it passes through, every half cell. Points are a
// tenth of a second apart, so a fast hand's consecutive points can be
// 15 cm apart; a copy played at another pace samples the path between
// them, in cells where neither end point is filed, and would otherwise
// find no candidate to be compared with. That is how a real recording
// replayed 1.25× faster escaped.
func (r *replayRegistry) indexSegment(g *replayGeneration, from int32, a, b *motionPoint) {
	steps := int(math.Sqrt(pointDist2(a, b)) / (r.cell / 2))
	if steps < 2 || steps > maxSegmentSteps {
		return
	}
	var last [2]uint64
	for grid := range g.grids {
		last[grid] = r.key(a, grid)
	}
	var p motionPoint
	for s := 1; s < steps; s++ {
		t := float32(s) / float32(steps)
		for c := range p {
			p[c] = a[c] + t*(b[c]-a[c])
		}
		for grid := range g.grids {
			k := r.key(&p, grid)
			if k == last[grid] {
				continue
			}
			last[grid] = k
			g.grids[grid].add(k, from)
		}
	}
}

// rotationCount is how many generations the registry has started.
func (r *replayRegistry) rotationCount() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotations
}

// forget drops a stream's link so that a new stream with a reused number
// does not continue its path.
func (r *replayRegistry) forget(stream uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.gens {
		if g != nil {
			delete(g.last, stream)
		}
	}
}
