package biometrics

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// Liveness thresholds that are properties of bodies and devices rather
// than of a deployment.
const (
	// teleportSlack forgives tracking noise between frames a millisecond
	// apart.
	teleportSlack = 0.02
	// teleportsToFail: a jump is usually a tracking glitch (the real
	// recordings have bursts of five in 12 s, half a metre in one frame);
	// a stream spliced from pieces jumps far more often.
	teleportsToFail = 8
	// glitchFrames: a jump that does not come back within this many frames
	// is where the hand now is.
	glitchFrames       = 3
	teleportMemory     = 10 * time.Second
	stillWindowsToFail = 3
	// clockBurst is how far the device clock may get ahead of arrival time
	// since the stream's first frame. Some lead can be honest: if the
	// first frames were held up on the way (a stalled network, or a realm
	// node too busy to read them as a thousand headsets connect), every
	// later frame looks early by the hold-up. A device that keeps sending
	// motion faster than real time gains without bound, and passes it
	// within seconds at the realm's frame-rate cap; a clock merely running
	// fast is also caught by the bucket check.
	clockBurst = 10 * time.Second
	// clockBucket and clockBuckets: the lowest arrival-minus-device offset
	// per bucket; a steady climb across buckets is a clock running slow, a
	// steady fall one running fast, while a stall (or its catching up)
	// moves one or two buckets and stops.
	clockBucket  = 5 * time.Second
	clockBuckets = 5
	// historyPoints is the stream's own recent motion kept to spot loops:
	// 12 s at 10 points per second.
	historyPoints = 120
	// loopMinLag: points closer in time than this are the same motion,
	// not a repetition of it.
	loopMinLag = 5
	loopShare  = 0.8
	// copiedWindowsToFail: consecutive judged windows that must be copies.
	copiedWindowsToFail = 2
	// minJudgedSpread: the hands must range over a few centimetres, or
	// the window is a resting pose that fingerprints nobody.
	minJudgedSpread = 0.02
	// Windows whose hands range under specificSpread say less: small
	// motion close to a common pose comes within the tolerance of someone
	// else's earlier motion by chance in a crowd (8 of 2,000 synthetic
	// people in a minute, all of them moving little). A run of copies
	// that holds such a window must be one window longer.
	specificSpread           = 0.04
	copiedSmallWindowsToFail = copiedWindowsToFail + 1
)

// spread is the RMS distance of the points from their mean.
func spread(pts []motionPoint) float64 {
	var mean [6]float64
	for i := range pts {
		for c := range 6 {
			mean[c] += float64(pts[i][c]) / float64(len(pts))
		}
	}
	var s float64
	for i := range pts {
		for c := range 6 {
			d := float64(pts[i][c]) - mean[c]
			s += d * d
		}
	}
	return math.Sqrt(s / float64(max(len(pts), 1)))
}

type historyPoint struct {
	p          motionPoint
	idx        uint32
	contiguous bool // follows the previous point without a gap
}

// liveState is a stream's memory for liveness checks.
type liveState struct {
	cfg          Config
	teleports    []time.Time
	glitch       int // consecutive frames dropped as a jump
	stillWindows int

	haveClock bool
	floor     int64 // µs: the lowest offset the stream has had
	haveFloor bool
	climb     int64 // µs: the latest frame's offset above floor
	// clockDetail says, for the node's log, what the clock check last
	// found impossible.
	clockDetail string
	firstOffset int64 // µs: arrival − device time of the first frame
	bucketAt    time.Time
	bucketMins  []int64
	// judgeAtClose: the drift check waits for the newest bucket to be
	// complete (see frame).
	judgeAtClose bool

	matches []match
	// peerScratch holds each probe point's candidates among the peers' cells.
	peerScratch [][]peerRef
	copied      int // consecutive windows found on earlier motion
	// copiedSmall: one of those windows ranged under specificSpread.
	copiedSmall bool
	// replayMemo is what the last lookup found for the points the next
	// window holds again.
	replayMemo replayMemo
	looped     int    // consecutive windows found on the stream's own motion
	lastPoint  uint32 // number of the newest point remembered
	havePoint  bool
	samples    uint64 // samples seen, to number points
	history    []historyPoint
	hstart     int
}

func newLiveState(cfg Config) liveState {
	return liveState{cfg: cfg, history: make([]historyPoint, 0, historyPoints)}
}

func (l *liveState) bytes() int {
	return int(unsafe.Sizeof(*l)) + cap(l.history)*int(unsafe.Sizeof(historyPoint{})) +
		cap(l.replayMemo.points)*int(unsafe.Sizeof(memoPoint{})) +
		cap(l.teleports)*int(unsafe.Sizeof(time.Time{})) + cap(l.bucketMins)*8
}

// jumped reports whether a hand moved faster than a hand can between the
// previous accepted frame and f. Such a frame is dropped as a tracking
// glitch, unless the hand stays where it jumped to, which is then accepted
// as its position.
func (l *liveState) jumped(f, prev *Frame, havePrev bool, arrival time.Time) bool {
	if !havePrev {
		return false
	}
	dt := float64(f.TimeUS-prev.TimeUS) / 1e6
	jump := false
	for _, pair := range [2][2]*Pose{{&prev.Left, &f.Left}, {&prev.Right, &f.Right}} {
		if pair[0].Tracked && pair[1].Tracked && posOf(pair[1]).sub(posOf(pair[0])).norm() > l.cfg.MaxHandSpeed*dt+teleportSlack {
			jump = true
		}
	}
	if !jump {
		l.glitch = 0
		return false
	}
	if l.glitch == 0 {
		l.teleports = append(l.teleports, arrival)
	}
	l.glitch++
	if l.glitch > glitchFrames {
		l.glitch = 0
		return false
	}
	return true
}

// frame checks one accepted frame against the arrival clock and the jumps
// seen lately. offset is the frame's arrival minus its device time, in µs,
// and lag the node's own read lag (nodeLag), which the check discounts:
// what is left of a climb is the device's.
func (l *liveState) frame(offset, lag int64, arrival time.Time) string {
	// The discount never takes the offset below the lowest the stream has
	// had: the node's estimate trails its lag by a second or so, and as
	// the node drains a backlog it would otherwise make frames read on
	// time look early. Only a discount that was due can be taken, so a
	// device clock running fast is judged as without one.
	if !l.haveFloor || offset < l.floor {
		l.floor, l.haveFloor = offset, true
	}
	l.climb = offset - l.floor
	offset -= min(max(offset-l.floor, 0), lag)
	reason := ""
	for len(l.teleports) > 0 && arrival.Sub(l.teleports[0]) > teleportMemory {
		l.teleports = l.teleports[1:]
	}
	if len(l.teleports) >= teleportsToFail {
		reason = LivenessTeleport
		l.teleports = l.teleports[:0]
	}
	if !l.haveClock {
		l.haveClock, l.firstOffset, l.bucketAt = true, offset, arrival
		l.bucketMins = append(l.bucketMins[:0], offset)
		return reason
	}
	if offset < l.firstOffset-clockBurst.Microseconds() {
		// The device produced far more motion than time has passed.
		l.clockDetail = fmt.Sprintf("the device sent %s more motion than time passed since the stream's first frame (at most %s)",
			time.Duration(l.firstOffset-offset)*time.Microsecond, clockBurst)
		l.firstOffset = offset
		return LivenessClock
	}
	if arrival.Sub(l.bucketAt) >= clockBucket {
		// A climb that was mostly its newest bucket's first frames is
		// judged now that the bucket is complete.
		if l.judgeAtClose {
			l.judgeAtClose = false
			if drifted, _ := l.drifted(); drifted {
				l.clockDetail = l.driftDetail()
				l.bucketAt = arrival
				l.bucketMins = append(l.bucketMins[:0], offset)
				return LivenessClock
			}
		}
		l.bucketAt = arrival
		l.bucketMins = append(l.bucketMins, offset)
		if len(l.bucketMins) > clockBuckets {
			l.bucketMins = l.bucketMins[1:]
		}
		if drifted, stepped := l.drifted(); drifted {
			if stepped {
				// Most of the climb is one step into the bucket just
				// opened: a node that stopped reading for a while, whose
				// lag the node's estimate (nodeLag) discounts a second
				// or so after its frames are read again. Its bucket's
				// lowest offset says, once the bucket is complete.
				l.judgeAtClose = true
				return reason
			}
			// Start the drift watch again from this frame; the bucket it
			// opens must hold it, or the next frame in the same bucket
			// would have no minimum to lower.
			l.clockDetail = l.driftDetail()
			l.bucketMins = append(l.bucketMins[:0], offset)
			return LivenessClock
		}
	} else {
		last := len(l.bucketMins) - 1
		l.bucketMins[last] = min(l.bucketMins[last], offset)
	}
	return reason
}

// drifted reports whether the last clockBuckets buckets' lowest offsets
// climb, or fall, steadily by more than MaxClockDrift of their span, and
// whether more than half of that is the newest bucket's step.
func (l *liveState) drifted() (drifted, stepped bool) {
	if len(l.bucketMins) != clockBuckets {
		return false, false
	}
	span := clockBucket * (clockBuckets - 1)
	climb := l.bucketMins[clockBuckets-1] - l.bucketMins[0]
	rising, falling := true, true
	for i := 1; i < clockBuckets; i++ {
		rising = rising && l.bucketMins[i] > l.bucketMins[i-1]
		falling = falling && l.bucketMins[i] < l.bucketMins[i-1]
	}
	limit := l.cfg.MaxClockDrift * float64(span.Microseconds())
	if !(rising && float64(climb) > limit || falling && float64(-climb) > limit) {
		return false, false
	}
	step := l.bucketMins[clockBuckets-1] - l.bucketMins[clockBuckets-2]
	return true, 2*abs64(step) > abs64(climb)
}

// driftDetail says, for the node's log, how the buckets' lowest offsets
// moved when drifted found them drifting: which way the device clock ran,
// and by how much.
func (l *liveState) driftDetail() string {
	span := clockBucket * (clockBuckets - 1)
	climb := time.Duration(l.bucketMins[len(l.bucketMins)-1]-l.bucketMins[0]) * time.Microsecond
	way := "slow: its frames arrive later and later"
	if climb < 0 {
		way, climb = "fast: its frames arrive earlier and earlier", -climb
	}
	return fmt.Sprintf("the device clock runs %s, by %s over %s (%.0f %%; at most %.0f %%)",
		way, climb.Round(time.Millisecond), span, 100*climb.Seconds()/span.Seconds(), 100*l.cfg.MaxClockDrift)
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// windowPoints are a window's moving points: all of them (probe) and the
// ones new since the previous window (fresh), with their numbers, and how
// many of the newest the next window will hold again (carried).
type windowPoints struct {
	probe, fresh []motionPoint
	probeIdx     []uint32
	freshCont    []bool
	carried      int
}

// points takes the window's moving points from rel, the hand positions
// relative to the head that feature extraction computed, on a grid of
// absolute sample numbers so that overlapping windows yield the same
// points. It is separate from window so that extraction's working arrays go
// back to the engine's pool before the stream waits for the replay
// registry's lock. The fresh points, filed in the registry, are those of
// the newest freshSamples: one hop's, or two after a thinned window.
//
// The lists are the engine's pointsScratch, emptied: the caller puts them
// back once the window's checks are done with them.
func (l *liveState) points(s *Stream, w []sample, rel [][6]float64, freshSamples int) *windowPoints {
	hop := s.e.cfg.hopSamples()
	every := max(1, pointEverySamples*s.e.cfg.SampleRate/DefaultSampleRate)
	first := l.samples - uint64(len(w)) // absolute number of w[0]
	rate := float64(s.e.cfg.SampleRate)
	pts := s.e.pointsScratch.Get().(*windowPoints)
	probe, fresh, probeIdx, freshCont := pts.probe[:0], pts.fresh[:0], pts.probeIdx[:0], pts.freshCont[:0]
	carried := 0
	for k := range w {
		abs := first + uint64(k)
		if abs%uint64(every) != 0 {
			continue
		}
		// A point's speed is from the sample before it. The window's first
		// sample has none in the window, and it was the last window's
		// point; when the last window was thinned (freshSamples spans the
		// whole window) it is this one's, and its speed is taken from the
		// sample after it, so that the stream's path keeps its point.
		from, to := k-1, k
		if k == 0 {
			if freshSamples < len(w) || len(w) < 2 || w[1].segStart {
				continue
			}
			from, to = 0, 1
		}
		var d float64
		for c := range 6 {
			x := rel[to][c] - rel[from][c]
			d += x * x
		}
		if w[k].segStart || math.Sqrt(d)*rate < minPointSpeed {
			continue
		}
		var p motionPoint
		for c := range 6 {
			p[c] = float32(rel[k][c])
		}
		idx := uint32(abs / uint64(every))
		probe = append(probe, p)
		probeIdx = append(probeIdx, idx)
		if k > hop { // the next window starts hop samples on, at k 0
			carried++
		}
		if k >= len(w)-freshSamples {
			fresh = append(fresh, p)
			cont := l.havePoint && l.lastPoint+1 == idx
			if len(fresh) > 1 {
				cont = probeIdx[len(probeIdx)-2]+1 == idx
			}
			freshCont = append(freshCont, cont)
		}
	}
	*pts = windowPoints{probe: probe, fresh: fresh, probeIdx: probeIdx, freshCont: freshCont, carried: carried}
	return pts
}

// window runs the checks that need a window of motion: tremor, loops, and
// replays of any stream's earlier motion on this node.
func (l *liveState) window(s *Stream, f *Features, pts *windowPoints, at time.Time) []string {
	var reasons []string
	if f.live.tremorRMS < l.cfg.MinTremor {
		l.stillWindows++
		if l.stillWindows >= stillWindowsToFail {
			reasons = append(reasons, LivenessNoTremor)
			l.stillWindows = 0
		}
	} else {
		l.stillWindows = 0
	}
	probe, fresh, probeIdx, freshCont := pts.probe, pts.fresh, pts.probeIdx, pts.freshCont
	ranged := spread(probe)
	judged := len(probe) >= minJudgedPoints && f.live.pathLength >= minJudgedPath && ranged >= minJudgedSpread
	if judged {
		l.matches = s.e.replay.lookupReusing(&l.replayMemo, s.n, probeIdx[len(probeIdx)-1], probe, probeIdx, pts.carried, l.matches)
		switch {
		case sequenceShare(l.matches, probeIdx) >= replayMatchShare || l.peerCopied(s, probe, probeIdx):
			l.copied, l.looped = l.copied+1, 0
			l.copiedSmall = l.copiedSmall || ranged < specificSpread
		case l.loopShare(probe, probeIdx) >= loopShare:
			l.copied, l.copiedSmall, l.looped = 0, false, l.looped+1
		default:
			l.copied, l.copiedSmall, l.looped = 0, false, 0
		}
		// Two windows in a row (three when one of them moved little): a
		// copy goes on, a coincidence does not.
		need := copiedWindowsToFail
		if l.copiedSmall {
			need = copiedSmallWindowsToFail
		}
		if l.copied >= need {
			reasons = append(reasons, LivenessReplay)
			l.copied, l.copiedSmall = 0, false
		}
		if l.looped >= copiedWindowsToFail {
			reasons = append(reasons, LivenessLoop)
			l.looped = 0
		}
	}
	if len(fresh) > 0 {
		// Fresh points are numbered consecutively from freshIdx only where
		// they are contiguous; the registry needs each point's own number.
		s.e.replay.addIndexed(s.n, probeIdx[len(probeIdx)-len(fresh):], fresh, freshCont, at)
		for i := range fresh {
			l.remember(historyPoint{p: fresh[i], idx: probeIdx[len(probeIdx)-len(fresh)+i], contiguous: freshCont[i]})
		}
	}
	return reasons
}

func (l *liveState) remember(h historyPoint) {
	l.lastPoint, l.havePoint = h.idx, true
	if len(l.history) < historyPoints {
		l.history = append(l.history, h)
		return
	}
	l.history[l.hstart] = h
	l.hstart = (l.hstart + 1) % historyPoints
}

// loopShare is the share of probe points that lie on the stream's own
// motion from at least loopMinLag points earlier, within half the replay
// tolerance: a loop repeats itself far more exactly than a person does.
//
// It goes through the history's segments once, each against every probe
// point, so that a segment's box (beyondSegment's, grown by the
// tolerance) is worked out once instead of once per probe point; each
// point's match still sees the segments in the history's order.
func (l *liveState) loopShare(probe []motionPoint, idx []uint32) float64 {
	n := len(l.history)
	if n < 2 {
		return 0
	}
	tol2 := l.cfg.ReplayTolerance * l.cfg.ReplayTolerance / 4
	reach := math.Sqrt(tol2) * (1 + 1e-6) // beyondSegment's margin
	l.matches = l.matches[:0]
	for range probe {
		l.matches = append(l.matches, match{})
	}
	a := &l.history[l.hstart%n]
	for i := 1; i < n; i++ {
		b := &l.history[(l.hstart+i)%n]
		if b.contiguous {
			var lo, hi [6]float64
			for c := range lo {
				lo[c], hi[c] = float64(a.p[c]), float64(b.p[c])
				if lo[c] > hi[c] {
					lo[c], hi[c] = hi[c], lo[c]
				}
				lo[c], hi[c] = lo[c]-reach, hi[c]+reach
			}
			for j := range probe {
				if b.idx+loopMinLag > idx[j] || outsideBox(&probe[j], &lo, &hi) {
					continue
				}
				if d := segmentDist2(&probe[j], &a.p, &b.p); d <= tol2 {
					l.matches[j].offer(streamPoint{idx: b.idx, fit: d / tol2})
				}
			}
		}
		a = b
	}
	return sequenceShare(l.matches, idx)
}

// outsideBox reports whether p lies outside the box from lo to hi in any
// coordinate.
func outsideBox(p *motionPoint, lo, hi *[6]float64) bool {
	for c := range p {
		if x := float64(p[c]); x < lo[c] || x > hi[c] {
			return true
		}
	}
	return false
}

// peerCopied reports whether the window retraces motion another node of
// the cluster shared (Engine.SharePaths); false when nothing is shared.
func (l *liveState) peerCopied(s *Stream, probe []motionPoint, probeIdx []uint32) bool {
	pp := s.e.replay.peers.Load()
	if pp == nil {
		return false
	}
	var share float64
	share, l.peerScratch = pp.sequenceShare(probe, probeIdx, l.peerScratch)
	return share >= replayMatchShare
}
