package xr

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/cpuload"
)

// A node that takes more streams than it can read degrades every stream
// it serves: its read lag climbs for all of them at once. So it sheds at
// the door instead: a session's first frames or its WebRTC offer open no
// new stream while the node is behind its streams, or while it holds
// Config.MaxStreams of them. Streams already open are never closed for
// it; a refused session keeps its trust and simply has no motion
// evidence, like a client that does not stream, until it retries.
//
// The read lag says a node is full only once every stream is late, and a
// fixed cap is a guess its operator must make for each machine. So the
// node also asks the operating system: with Config.CPUReserve it opens no
// new stream while the cores it could still use (the machine's idle ones,
// at most those its GOMAXPROCS leaves it) would fall under that share of
// its cores. A stream's cost is measured, not assumed: the process's CPU
// over its streams, which also counts what it does beside them and so
// errs on the side of refusing.

// ErrNodeBusy is wrapped by every refusal of a new stream for the node's
// load (*BusyError).
var ErrNodeBusy = errors.New("node busy")

// Why a node refused to open a stream, as the refused-streams metric
// labels them.
const (
	BusyBehind   = "behind"
	BusyCapacity = "capacity"
	BusyCPU      = "cpu"
)

// How long a refused client is told to wait before it tries again. A
// node behind its streams catches up over a few seconds of read-lag
// samples (one a second); a full node frees a place only when a stream
// ends, which takes longer, and so does a machine with no CPU to spare.
const (
	retryBehind   = 5 * time.Second
	retryCapacity = 15 * time.Second
	retryCPU      = 15 * time.Second
	// retryShed: a stream the node closed for being behind was one of
	// the many it could not keep up with; coming back sooner would only
	// find the node still catching up (shedRetry spreads it further).
	retryShed = 15 * time.Second
)

// shedAfterWait: a node that is behind closes an open stream that runs
// this late: its frame message waited this long in its socket, or its
// data channel's, before the node read it (over stamped sockets), or its
// frames arrive this much later than they did at best (Stream.Late).
// Such a stream's evidence is already too late for a trust decision, and
// every stream the node keeps that far behind puts the others further
// behind, until their sockets fill and their devices look slow to the
// clock checks: the collapse this avoids.
const shedAfterWait = 2 * time.Second

// BusyError is a refused stream opening: why, for the client, and when to
// try again.
type BusyError struct {
	Cause      string // BusyBehind, BusyCapacity or BusyCPU
	Reason     string
	RetryAfter time.Duration
}

func (e *BusyError) Error() string { return "node busy: " + e.Reason }

func (e *BusyError) Unwrap() error { return ErrNodeBusy }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up.
func (e *BusyError) RetryAfterSeconds() int {
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// admission decides whether the node opens one more stream. open counts
// the streams the node holds; it is changed only under registry.mu,
// alongside the registry, so the cap is exact, and read without a lock
// by offers, which only ask.
type admission struct {
	max    int // 0: no cap
	open   atomic.Int64
	behind func(now time.Time) (bool, time.Duration) // the engine's state at now, and its read lag
	cpu    cpuBudget
	shed   shedPace
}

// shedShare is the share of its open streams a node that is behind sheds
// a second, at most (and at least one stream a second). All at once, it
// would close every stream whose message happened to wait 2 s in the same
// moment, a thousand on a busy node, far more than its excess, and they
// would all come back together: paced, the backlog eases as streams go,
// and it stops shedding as soon as it has caught up.
const shedShare = 0.02

// shedPace is a token bucket of sheds, refilled at shedShare of the open
// streams a second, holding at most a second's worth.
type shedPace struct {
	mu     sync.Mutex
	tokens float64
	at     time.Time
}

// take reports whether one more stream may be shed at now, of open.
func (p *shedPace) take(now time.Time, open int64) bool {
	rate := max(1, shedShare*float64(open))
	p.mu.Lock()
	defer p.mu.Unlock()
	// Readers pass the time they started on their message, so calls come
	// slightly out of order: only time past the latest seen refills, or
	// a call from the past followed by one from the present would count
	// the same span twice.
	switch {
	case p.at.IsZero():
		p.tokens, p.at = rate, now
	case now.After(p.at):
		p.tokens = min(rate, p.tokens+now.Sub(p.at).Seconds()*rate)
		p.at = now
	}
	if p.tokens < 1 {
		return false
	}
	p.tokens--
	return true
}

// shedRetry is how long a shed stream is told to wait: retryShed and up
// to as long again, by its session, so that the streams a node sheds
// together do not all come back in the same second.
func shedRetry(sessionID string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(sessionID))
	return retryShed + time.Duration(h.Sum32()%uint32(retryShed/time.Second))*time.Second
}

// check returns nil when one more stream may open at now, and why not
// otherwise.
func (a *admission) check(now time.Time) *BusyError {
	if behind, lag := a.behind(now); behind {
		return &BusyError{Cause: BusyBehind, RetryAfter: retryBehind,
			Reason: fmt.Sprintf("this node is behind its XR streams by %s: it opens no new stream until it catches up", lag.Round(time.Millisecond))}
	}
	if a.max > 0 && a.open.Load() >= int64(a.max) {
		return &BusyError{Cause: BusyCapacity, RetryAfter: retryCapacity,
			Reason: fmt.Sprintf("this node is at capacity: it serves %d XR streams, its most", a.max)}
	}
	return a.cpu.check(a.open.Load())
}

// opened notes a stream the node just opened; the caller holds the
// registry's lock, as open is changed under it.
func (a *admission) opened() {
	a.open.Add(1)
	a.cpu.since.Add(1)
}

// minCPUStreams is the fewest streams for which the node asks whether it
// has CPU to spare: fewer cost it a few hundredths of a core (about 0.6 ms
// of CPU a second each), so they cannot be what fills its machine, and a
// node busy with something else must not refuse its first headsets.
const minCPUStreams = 64

// cpuMeasureEvery is how often the node measures its CPU, each time over
// the last cpuload.DefaultWindow.
const cpuMeasureEvery = time.Second

// cpuWindowSteps is how many measurements one window spans.
const cpuWindowSteps = int(cpuload.DefaultWindow / cpuMeasureEvery)

// cpuSpareSteps is how many measurements the spare CPU is the least of:
// a neighbour that pauses for a few seconds (a compile between two
// files, a collector between two cycles) leaves cores idle that it takes
// back a moment later, and streams admitted into them would stay.
const cpuSpareSteps = 10

// cpuBudget refuses a new stream when the node's spare CPU, less what the
// streams it opened lately will take, is under its reserve.
//
// Lately is the whole window, not only since the last measurement: the
// spare CPU is an average over the last 5 s, in which a stream opened a
// second ago weighs a fifth of its cost. Charging only the streams opened
// since the last measurement would let every measurement of a window
// spend the same spare CPU again, five times in all, and a node whose
// refused clients all retry together would overshoot by as much.
type cpuBudget struct {
	reserve float64 // cores kept free; 0 is off
	cores   float64 // cores the node may use at once (GOMAXPROCS)

	view  atomic.Pointer[cpuView] // nil until measured, or once readings have failed for cpuSpareSteps
	since atomic.Int64            // streams opened since view was taken

	// opened is the streams opened between consecutive measurements,
	// newest first, over one window; spares the spare CPU each of the last
	// measurements saw, newest first, the first sparesHeld of them; failed
	// the measurements that failed since the last that did not. Only
	// measured touches them.
	opened     [cpuWindowSteps]int64
	spares     [cpuSpareSteps]float64
	sparesHeld int
	failed     int
}

// cpuView is one measurement of the node's CPU, as admission reads it.
type cpuView struct {
	spare     float64 // cores the node could still use, the least its last measurements saw
	perStream float64 // cores one stream costs, on average
	streams   int64   // streams open when it was measured
	// unseen is the streams opened within the window whose cost its
	// average does not hold yet, counted in whole streams.
	unseen float64
}

// measured takes the rates of the node's CPU over the last seconds while
// it held streams streams, or (!ok) a measurement that failed. One that
// fails keeps the last view, and the streams opened meanwhile are charged
// in full: a meter starts its window again when a reading fails or a
// counter goes back, and a node that admitted everyone for that moment
// would take every refused client retrying at once. Only when
// measurements have failed for as long as spare CPU is remembered does
// the budget admit as if unmeasured: refusing every stream on a node
// that cannot read its own CPU would be an outage, not a protection.
func (b *cpuBudget) measured(r cpuload.Rates, ok bool, streams int64) {
	if !ok {
		if b.failed++; b.failed >= cpuSpareSteps {
			b.sparesHeld = 0
			b.view.Store(nil)
		}
		return
	}
	b.failed = 0
	copy(b.opened[1:], b.opened[:])
	b.opened[0] = b.since.Swap(0)
	// A stream opened between the i-th and the (i+1)-th measurement
	// before this one has run, on average, for i + ½ of the window's
	// steps: that share of its cost is in the average, the rest is not
	// yet.
	unseen := 0.0
	for i, n := range b.opened {
		unseen += float64(n) * (1 - (float64(i)+0.5)/float64(cpuWindowSteps))
	}
	v := &cpuView{spare: max(b.cores-r.ProcessCores, 0), streams: streams, unseen: unseen}
	if r.MachineKnown {
		v.spare = min(v.spare, r.IdleCores)
	}
	copy(b.spares[1:], b.spares[:])
	b.spares[0] = v.spare
	b.sparesHeld = min(b.sparesHeld+1, cpuSpareSteps)
	for _, s := range b.spares[1:b.sparesHeld] {
		v.spare = min(v.spare, s)
	}
	if streams > 0 {
		v.perStream = r.ProcessCores / float64(streams)
	}
	b.view.Store(v)
}

// short reports whether the node, holding open streams, is short of CPU
// for one more: its measurement and the spare CPU left after the streams
// it opened lately.
func (b *cpuBudget) short(open int64) (v *cpuView, spare float64, short bool) {
	v = b.view.Load()
	if b.reserve <= 0 || v == nil || open < minCPUStreams {
		return v, 0, false
	}
	spare = v.spare - (v.unseen+float64(b.since.Load()))*v.perStream
	return v, spare, spare < b.reserve
}

// seen is f of the budget's measurement, NaN without one.
func (b *cpuBudget) seen(f func(*cpuView) float64) float64 {
	if v := b.view.Load(); v != nil {
		return f(v)
	}
	return math.NaN()
}

// check returns why one more stream may not open beside the open ones,
// or nil.
func (b *cpuBudget) check(open int64) *BusyError {
	v, spare, short := b.short(open)
	if !short {
		return nil
	}
	return &BusyError{Cause: BusyCPU, RetryAfter: retryCPU,
		Reason: fmt.Sprintf("this node has %.2f cores of CPU to spare, under its reserve of %.2f: it serves %d XR streams at %.2f ms of CPU a second each",
			max(spare, 0), b.reserve, open, v.perStream*1000)}
}

// measureCPU measures the node's CPU with meter every second of c until
// ctx ends, for admission and the metrics. The realm runs it on real time
// whatever the service's clock: CPU seconds are spent in real seconds.
func (s *Service) measureCPU(ctx context.Context, c clock.Clock, meter *cpuload.Meter) {
	m := cpuMeasure{s: s, meter: meter}
	m.take(c.Now())
	clock.Every(ctx, c, cpuMeasureEvery, func(context.Context) { m.take(c.Now()) })
}

// cpuMeasure takes the node's CPU readings for admission.
type cpuMeasure struct {
	s      *Service
	meter  *cpuload.Meter
	failed bool // the last reading failed, and that was logged
	short  bool // the node was short of CPU for new streams, and that was logged
}

// thin turns the engine's thinning on or off as the service's thinner
// decides, and says so once each way.
func (m *cpuMeasure) thin(v *cpuView, processCores float64, open int64, now time.Time) {
	s := m.s
	if s.thin.below <= 0 {
		return // never thins
	}
	behind, _ := s.admit.behind(now)
	thinning := s.engine.Thinning()
	on := s.thin.decide(thinning, v, processCores, open, behind)
	if on == thinning {
		return
	}
	s.engine.SetThinning(on)
	spare := math.NaN()
	if v != nil {
		spare = v.spare
	}
	if on {
		s.log.Warn("node is short of CPU: it judges the XR streams it trusts and is sure of every other window until it has CPU to spare",
			"spare_cores", spare, "thin_below_cores", s.thin.below, "behind", behind, "streams", open)
		return
	}
	s.log.Info("node has CPU to spare again: it judges every window of every XR stream", "spare_cores", spare, "streams", open)
}

// take reads the node's CPU at now and gives admission the rates over the
// meter's window, or no measurement while readings fail.
func (m *cpuMeasure) take(now time.Time) {
	err := m.meter.Sample(now)
	if err != nil && !m.failed {
		m.s.log.Warn("cannot read this node's CPU: if it stays unread for 10 s, new XR streams are admitted without asking whether it has CPU to spare", "err", err)
	}
	m.failed = err != nil
	rates, rerr := m.meter.Rates()
	open := m.s.admit.open.Load()
	b := &m.s.admit.cpu
	b.measured(rates, err == nil && rerr == nil, open)
	m.thin(b.view.Load(), rates.ProcessCores, open, now)
	// Once each way, as the read lag's "behind": an operator sees when the
	// node started to turn headsets away, and when it stopped.
	v, spare, short := b.short(open)
	if v == nil {
		// Unmeasured: the warning about the readings said what follows.
		m.short = false
		return
	}
	if short == m.short {
		return
	}
	m.short = short
	if short {
		m.s.log.Warn("node has no CPU to spare for new XR streams: it opens none until it has",
			"spare_cores", max(spare, 0), "reserve_cores", b.reserve, "streams", open, "stream_cpu_ms", v.perStream*1000)
		return
	}
	m.s.log.Info("node has CPU to spare for new XR streams again", "streams", open)
}
