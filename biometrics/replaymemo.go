package biometrics

import "slices"

// A stream's windows overlap by half: about half of a judged window's
// points were looked up one window earlier. Between the two lookups the
// registry only grew at the newest end of the current generation (each
// cell's chain gains entries at its head, the generation's array gains
// points, and the newest point of each stream gains its next), so a
// lookup can start from what the previous one found for a point and read
// only what was filed since. What each point's result needs for that is
// kept in the stream's replayMemo.

// rankedMatch is a match whose entries remember where their offer's
// candidate stood in the order a lookup reads them (candidateOrder). An
// offer replaces a stream's entry only when its fit is lower, or equal and
// its candidate earlier; a fifth stream evicts the entry latest by (fit,
// order). Ranked so, the result depends on the set of offers and not on
// the order they come in, which is what lets a lookup merge what one
// lookup found with what was filed since and end where reading everything
// again ends. A lookup that reads everything offers in rising order, so
// the rule keeps what the first offer of equal fit kept before; only the
// choice between two streams tied for the worst fit of four can differ.
type rankedMatch struct {
	m     match
	order [maxMatchStreams]uint8
}

func (rm *rankedMatch) offer(sp streamPoint, order uint8) {
	m := &rm.m
	for i := 0; i < m.n; i++ {
		if m.at[i].stream == sp.stream {
			if sp.fit < m.at[i].fit || sp.fit == m.at[i].fit && order < rm.order[i] {
				m.at[i], rm.order[i] = sp, order
			}
			return
		}
	}
	if m.n < maxMatchStreams {
		m.at[m.n], rm.order[m.n] = sp, order
		m.n++
		return
	}
	worst := 0
	for i := 1; i < m.n; i++ {
		if m.at[i].fit > m.at[worst].fit || m.at[i].fit == m.at[worst].fit && rm.order[i] > rm.order[worst] {
			worst = i
		}
	}
	if sp.fit < m.at[worst].fit || sp.fit == m.at[worst].fit && order < rm.order[worst] {
		m.at[worst], rm.order[worst] = sp, order
	}
}

// candidateOrder is where a lookup reads a candidate: list k (generation
// and grid, as in cellLists) first, then from the oldest to the newest of
// the list, rank being the candidate's place counted from the newest (0).
// It fits in a byte because a list holds at most maxCandidates (32).
func candidateOrder(k, rank int) uint8 {
	return uint8(k<<5 | (maxCandidates - 1 - rank))
}

// maxOpenEnds bounds the candidates a point's memo follows for a segment
// still to come; a point with more is looked up in full next time.
const maxOpenEnds = 4

// pending is what may change a point's result after its lookup although
// no entry is filed under its cells: the candidates in the current
// generation that were their stream's newest point (the stream's next
// point, filed later, makes a segment from them that a later lookup must
// measure although the candidate itself is old), and the stream's own
// candidates too recent to count, which count once the stream is
// ownExclusionPoints further on.
type pending struct {
	n    uint8
	full bool // more than maxOpenEnds: the memo cannot be used
	ends [maxOpenEnds]openEnd
	// ownFrom is the lowest number of the stream's own candidates left
	// out as too recent; ^0 when none was.
	ownFrom uint32
}

type openEnd struct {
	point int32 // in the current generation's array
	order uint8
}

func (o *pending) add(point int32, order uint8) bool {
	if o.n == maxOpenEnds {
		o.full = true
		return false
	}
	o.ends[o.n] = openEnd{point: point, order: order}
	o.n++
	return true
}

// tooRecent reports whether the stream's own point idx is left out of a
// lookup whose newest point is ownIdx, noting it in o (when given) for a
// later lookup to take it in once it counts.
func (o *pending) tooRecent(idx, ownIdx uint32) bool {
	if idx+ownExclusionPoints <= ownIdx {
		return false
	}
	if o != nil {
		o.ownFrom = min(o.ownFrom, idx)
	}
	return true
}

// replayMemo is what a stream's last lookup found for the points the next
// window will hold again, and how far the registry was filed then.
type replayMemo struct {
	rotations uint64   // the registry's rotations at the lookup; 0: none
	filed     [2]int32 // entries of the current generation's two grids
	points    []memoPoint
}

type memoPoint struct {
	idx   uint32
	p     motionPoint
	found rankedMatch
	open  pending
}

// lookupReusing is lookup for a stream's window, given the stream's memo
// of its previous lookup; carry is how many of the newest probe points the
// next window will hold, whose results it keeps in the memo. A point found
// in the memo starts from its earlier result and reads only the entries
// filed since, and the segments from its open ends; anything that could
// make that differ from reading everything again sends the point to a full
// lookup: a rotation of the generations, a candidate behind the result
// pushed out of its list's newest maxCandidates, one of the stream's own
// points left out as too recent that counts now, or more open ends than
// the memo holds. So the result is the one lookup gives, entry for entry.
func (r *replayRegistry) lookupReusing(memo *replayMemo, stream, ownIdx uint32, probe []motionPoint, probeIdx []uint32, carry int, out []match) []match {
	r.mu.Lock()
	defer r.mu.Unlock()
	out = out[:0]
	old := memo.points
	if memo.rotations == 0 || memo.rotations != r.rotations || r.fullLookups {
		old = nil
	}
	start := len(probe) - min(carry, len(probe))
	// Grown to what is kept and no further: append's doubling would
	// leave several unused points in every stream's state.
	memo.points = slices.Grow(memo.points, max(0, len(probe)-start-len(memo.points)))
	written := 0 // memo.points[:written] are this lookup's: no longer old
	c := 0
	var lists cellLists
	for i := range probe {
		p := &probe[i]
		next := memoPoint{idx: probeIdx[i], p: *p, open: pending{ownFrom: ^uint32(0)}}
		for c < len(old) && old[c].idx < probeIdx[i] {
			c++
		}
		reused := c < len(old) && c >= written && old[c].idx == probeIdx[i] && old[c].p == *p &&
			r.reuse(&next, &old[c], memo.filed, stream, ownIdx, p)
		r.memoLooked++
		if reused {
			r.memoReused++
		} else {
			next.found, next.open = rankedMatch{}, pending{ownFrom: ^uint32(0)}
			r.candidates(&lists, p)
			r.nearest(&next.found, &next.open, &lists, stream, ownIdx, p)
		}
		out = append(out, next.found.m)
		if i >= start {
			if written < len(memo.points) {
				memo.points[written] = next
			} else {
				memo.points = append(memo.points, next)
			}
			written++
		}
	}
	memo.points = memo.points[:written]
	memo.rotations = r.rotations
	if g := r.gens[0]; g != nil {
		for grid := range g.grids {
			memo.filed[grid] = int32(len(g.grids[grid].entries))
		}
	}
	return out
}

// reuse makes next, the result for p now, from was, its result when the
// current generation's grids held filed entries, or reports false when
// only a full lookup can tell.
func (r *replayRegistry) reuse(next, was *memoPoint, filed [2]int32, stream, ownIdx uint32, p *motionPoint) bool {
	if was.open.full || was.open.ownFrom != ^uint32(0) && was.open.ownFrom+ownExclusionPoints <= ownIdx {
		// Too many open ends, or own motion left out before counts now.
		return false
	}
	g := r.gens[0]
	// The entries filed since under p's cells, newest first: a chain's
	// entries only ever point at older ones, so the walk stops at the
	// first entry that was there before.
	var fresh [2][maxCandidates]int32
	var nFresh [2]int
	for grid := range g.grids {
		x := &g.grids[grid]
		if x.used == 0 {
			continue
		}
		for e := x.heads[x.slot(r.key(p, grid))]; e > filed[grid] && nFresh[grid] < maxCandidates; {
			entry := x.entries[e-1]
			fresh[grid][nFresh[grid]] = entry.point
			nFresh[grid]++
			e = entry.prev
		}
	}
	// moved is where a candidate of the earlier lookup stands now that
	// the entries filed since come before it in its list's newest; false
	// when it is no longer among them. The previous generation's lists
	// (k 2 and 3) gain nothing.
	moved := func(order uint8) (uint8, bool) {
		k := int(order >> 5)
		if k >= 2 {
			return order, true
		}
		n := uint8(nFresh[k])
		if order&(maxCandidates-1) < n {
			return 0, false
		}
		return order - n, true
	}
	next.found = was.found
	for i := 0; i < next.found.m.n; i++ {
		o, ok := moved(next.found.order[i])
		if !ok {
			return false
		}
		next.found.order[i] = o
	}
	next.open = pending{ownFrom: was.open.ownFrom}
	for _, end := range was.open.ends[:was.open.n] {
		o, ok := moved(end.order)
		if !ok {
			continue
		}
		sp := &g.points[end.point]
		if sp.next < 0 {
			if !next.open.add(end.point, o) {
				return false
			}
			continue
		}
		// The point's own distance and its segment from prev were
		// offered before; what is new is the segment to next.
		if pd2 := pointDist2(p, &sp.p); r.segmentReach(pd2, sp.lenNext) {
			if d := r.segmentFit(p, &sp.p, &g.points[sp.next].p); d <= 1 {
				next.found.offer(streamPoint{stream: sp.stream, idx: sp.idx, fit: d}, o)
			}
		}
	}
	for grid := range fresh {
		for rank := nFresh[grid] - 1; rank >= 0; rank-- {
			ci := fresh[grid][rank]
			sp := &g.points[ci]
			if sp.stream == stream && next.open.tooRecent(sp.idx, ownIdx) {
				continue
			}
			o := candidateOrder(grid, rank)
			if sp.next < 0 && !next.open.add(ci, o) {
				return false
			}
			if d := r.fit(g, sp, pointDist2(p, &sp.p), p); d <= 1 {
				next.found.offer(streamPoint{stream: sp.stream, idx: sp.idx, fit: d}, o)
			}
		}
	}
	return true
}
