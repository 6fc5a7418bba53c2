package biometrics

import (
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A node that falls behind its sockets (CPU saturated, the collector
// running without pause under a tight memory limit) reads every stream's
// frames later and later. Each stream's arrival-minus-device offset then
// climbs, which the clock check alone cannot tell from a device clock
// running slow: it would suspend every session of the node at once. The
// node's read lag is what all its streams' offsets share, so the engine
// estimates it from all of them and each stream's clock check discounts it.
const (
	// lagSampleEvery: each stream's lowest offset over this span of
	// arrival time is compared with its lowest when it was last read. A
	// second holds about nine messages of a batching headset, and is a
	// fifth of a clock bucket, so the estimate trails the real lag by
	// little within one bucket.
	lagSampleEvery = time.Second
	// lagMinStreams: with fewer streams having a say (below) there is no
	// estimate and no discount: the clock check as it was without one.
	// Fewer than this many streams cannot overload a node (32 headsets at
	// the 500 frames/s cap are 16,000 frames a second, a fraction of one
	// core), and the quantile below then needs at least 25 colluding
	// streams to move.
	lagMinStreams = 32
	// lagSayFor: what a stream said of the lag counts for this many
	// samples. A busy node's scheduler runs some readers only every few
	// seconds; their word, a little old, still counts (it can only be
	// lower than the lag now, as the lag climbs). A stream not read for
	// longer has no say until it is.
	lagSayFor = 10
	// lagClockBack: an arrival this far before the next sample is due is
	// a clock that went back (a test or an evaluation replaying another
	// day), not a frame read late: a node's frames are pushed with the
	// time they were read, which a busy node's scheduler can hold up by
	// seconds, never by this much.
	lagClockBack = time.Minute
	// lagQuantile: the node's lag is what a quarter of its streams say at
	// most. A node's lag delays every stream, so even its least delayed
	// quarter shows it; a device clock that runs slow climbs more than
	// the others, and moving this quantile up takes more than three
	// quarters of the node's streams. A low quantile under-estimates a
	// lag with jitter in it, which leaves the clock check stricter, never
	// looser, than the real lag. It also leaves out a lag that only some
	// streams have (a node reading some sockets far later than others):
	// that cannot be told from their devices' clocks from offsets alone.
	lagQuantile = 0.25
	// lagBehindFrom and lagCaughtUpBelow: the node logs that it is behind
	// once its estimate reaches a second, and that it caught up once the
	// estimate is back under a tenth of that, so a lag hovering about
	// one threshold does not log on every sample.
	lagBehindFrom    = time.Second
	lagCaughtUpBelow = 100 * time.Millisecond
	// lagStaleAfter: an estimate this much older than the time asked
	// about says nothing of the node now. Samples are taken by frames; a
	// node that read none for five sample spans has no backlog of them,
	// and its streams may all have ended: it must not stay behind, and
	// refuse new streams, on the word of streams that are gone.
	lagStaleAfter = 5 * lagSampleEvery
	// queueQuantile: the node is also behind when a tenth of its stamped
	// streams (frames whose arrival the kernel stamped, PushReceived)
	// last waited a second or more in their sockets' receive queues. The
	// wait is measured, not inferred: it runs from the kernel's receipt to
	// the node's read, which no client can move for another's socket, and
	// a client can lengthen its own only by sending more than the node
	// reads, which is load. A tenth of the node's streams doing that is a
	// node that is behind, so a high quantile is safe here where the
	// offsets' estimate (which slow device clocks can push up) needs a
	// low one: it sees a node that reads a tenth of its sockets far later
	// than the rest, which no quantile of offsets can tell from slow
	// device clocks.
	queueQuantile = 0.9
)

// noOffset marks a probe with no frame since the last sample, and
// noHeld one with no stamped frame.
const (
	noOffset = math.MaxInt64
	noHeld   = -1
)

// lagProbe is one stream's share of the node's lag estimate. Its reader
// lowers low per frame without a lock; the sampler takes it once a
// sample.
type lagProbe struct {
	low atomic.Int64 // µs: lowest arrival − device offset since the last sample, or noOffset
	// held is the longest a stamped frame of the stream waited in its
	// socket's receive queue since the last sample (µs), or noHeld.
	held atomic.Int64
	// The rest is guarded by nodeLag.mu. prev is the low of the last
	// sample the stream sent frames in, and prevLag the node's estimate
	// after that sample: a stream the node read nothing from for a while
	// climbs from where it was last seen. say is where the stream put the
	// lag at sample saidAt.
	prev, prevLag int64
	havePrev      bool
	say           int64
	saidAt        uint64
	hasSaid       bool
	// waited is the stream's last measured wait, at sample waitedAt: a
	// reader the scheduler starves sends nothing for a while, and its
	// last wait, which can only have grown since, still counts.
	waited    int64
	waitedAt  uint64
	hasWaited bool
}

func (p *lagProbe) observe(offset int64) {
	for {
		cur := p.low.Load()
		if offset >= cur || p.low.CompareAndSwap(cur, offset) {
			return
		}
	}
}

func (p *lagProbe) observeHeld(held int64) {
	for {
		cur := p.held.Load()
		if held <= cur || p.held.CompareAndSwap(cur, held) {
			return
		}
	}
}

// nodeLag estimates how far behind its streams' arrival the node reads
// them. In each sample, every stream that sent frames says where the lag
// is now: the estimate when the stream was last sampled, plus how far its
// lowest offset climbed since. The estimate is the low quantile of what
// the streams said in the last lagSayFor samples, never below zero: a
// node can read frames late, never before they arrive, so an estimate
// pulled down by streams whose clocks run fast only ever takes the
// discount away.
//
// A frame costs a stream two atomic loads and a compare-and-swap on its
// own probe. Once every lagSampleEvery of arrival time the frame that
// crosses the sample's time takes mu and walks the probes (O(streams log
// streams), about a second apart), so the hot path never waits on a lock
// that another stream's frames hold. Arrival times are the ones streams
// are pushed with, so the estimate is as deterministic as they are.
type nodeLag struct {
	log   *slog.Logger
	lagUS atomic.Int64 // the current estimate, µs, ≥ 0
	// queueUS is the queueQuantile of the stamped streams' waits in
	// their receive queues (µs, 0 with fewer than lagMinStreams of them).
	queueUS atomic.Int64
	// behind: the estimate or the queue wait passed lagBehindFrom, and
	// both have not yet fallen under lagCaughtUpBelow. Written by samples
	// under mu, read without it: a node that is behind opens no new
	// streams (Engine.Behind).
	behind atomic.Bool
	nextUS atomic.Int64 // arrival (µs) from which the next sample is due
	// sampledUS is the arrival (µs) of the frame that took the last
	// sample: how old the estimate is.
	sampledUS atomic.Int64

	// mu guards the rest, and the probes' fields but low. Lock order: a
	// sample runs inside Stream.Push, under that stream's mu, and takes
	// mu after it; nothing here takes a stream's lock.
	mu      sync.Mutex
	probes  map[*lagProbe]struct{}
	samples uint64      // samples taken
	says    []int64     // what the streams say, sorted in each sample
	waits   []int64     // the stamped streams' waits, sorted in each sample
	fresh   []*lagProbe // the probes that sent frames in the sample being closed
}

func newNodeLag(log *slog.Logger) *nodeLag {
	return &nodeLag{log: log, probes: map[*lagProbe]struct{}{}}
}

func (n *nodeLag) add(p *lagProbe) {
	p.low.Store(noOffset)
	p.held.Store(noHeld)
	n.mu.Lock()
	n.probes[p] = struct{}{}
	n.mu.Unlock()
}

func (n *nodeLag) remove(p *lagProbe) {
	n.mu.Lock()
	delete(n.probes, p)
	n.mu.Unlock()
}

// frame records a stream's raw offset for a frame that arrived at
// arrivalUS, and how long it waited in the socket's receive queue (heldUS,
// or noHeld when the kernel did not stamp it), takes a sample when one is
// due, and returns the lag, in µs, that the stream's clock check
// discounts.
func (n *nodeLag) frame(p *lagProbe, arrivalUS, offset, heldUS int64) int64 {
	p.observe(offset)
	if heldUS != noHeld {
		p.observeHeld(heldUS)
	}
	next := n.nextUS.Load()
	// An arrival far before the next sample is a clock that went back
	// (a node's frames are pushed with the time they were read): sample
	// from there rather than wait for the old time to come again.
	if (arrivalUS >= next || arrivalUS < next-lagClockBack.Microseconds()) &&
		n.nextUS.CompareAndSwap(next, arrivalUS+lagSampleEvery.Microseconds()) {
		n.sampledUS.Store(arrivalUS)
		n.sample()
	}
	return n.lagUS.Load()
}

// sample closes a sample: what each stream that sent frames says of the
// lag, and the low quantile of what the streams said lately as the
// estimate.
func (n *nodeLag) sample() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.samples++
	n.says, n.waits, n.fresh = n.says[:0], n.waits[:0], n.fresh[:0]
	for p := range n.probes {
		if low := p.low.Swap(noOffset); low != noOffset {
			if p.havePrev {
				p.say, p.saidAt, p.hasSaid = p.prevLag+low-p.prev, n.samples, true
			}
			p.prev, p.havePrev = low, true
			n.fresh = append(n.fresh, p)
		}
		if p.hasSaid && n.samples-p.saidAt < lagSayFor {
			n.says = append(n.says, p.say)
		}
		if held := p.held.Swap(noHeld); held != noHeld {
			p.waited, p.waitedAt, p.hasWaited = held, n.samples, true
		}
		if p.hasWaited && n.samples-p.waitedAt < lagSayFor {
			n.waits = append(n.waits, p.waited)
		}
	}
	lag := int64(0)
	if len(n.says) >= lagMinStreams {
		slices.Sort(n.says)
		lag = max(0, n.says[int(float64(len(n.says))*lagQuantile)])
	}
	queue := int64(0)
	if len(n.waits) >= lagMinStreams {
		slices.Sort(n.waits)
		queue = n.waits[int(float64(len(n.waits))*queueQuantile)]
	}
	n.lagUS.Store(lag)
	n.queueUS.Store(queue)
	for _, p := range n.fresh {
		p.prevLag = lag
	}
	d := time.Duration(lag) * time.Microsecond
	q := time.Duration(queue) * time.Microsecond
	switch {
	case !n.behind.Load() && (d >= lagBehindFrom || q >= lagBehindFrom):
		n.behind.Store(true)
		n.log.Warn("node is behind its XR streams: it reads their frames late, and their clock checks discount the lag",
			"lag", d, "streams", len(n.says), "socket_queue_p90", q, "stamped_streams", len(n.waits))
	case n.behind.Load() && d < lagCaughtUpBelow && q < lagCaughtUpBelow:
		n.behind.Store(false)
		n.log.Info("node caught up with its XR streams", "lag", d, "streams", len(n.says), "socket_queue_p90", q, "stamped_streams", len(n.waits))
	}
}

// ReadLag is how far behind its streams' arrival this node reads their
// frames, as estimated from all of them; zero when it keeps up or has too
// few streams to tell.
func (e *Engine) ReadLag() time.Duration {
	return time.Duration(e.lag.lagUS.Load()) * time.Microsecond
}

// ClockClimbLimit is how far a stream's offsets may climb over the clock
// check's span, beyond the node's read lag that the check discounts,
// before it judges the device clock slow: Config.MaxClockDrift of 20 s,
// 5 s by default.
func (e *Engine) ClockClimbLimit() time.Duration {
	return time.Duration(e.cfg.MaxClockDrift * float64(clockBucket*(clockBuckets-1)))
}

// SocketQueue is how long the stamped streams' frames waited in their
// sockets' receive queues before the node read them: the wait a tenth of
// those streams reached or passed at their last read within the last ten
// samples; zero with fewer than 32 stamped streams.
func (e *Engine) SocketQueue() time.Duration {
	return time.Duration(e.lag.queueUS.Load()) * time.Microsecond
}

// Behind reports whether this node is behind its streams at now: from
// when its read lag, or the wait of a tenth of its stamped streams in
// their receive queues (SocketQueue), reaches a second until both are
// back under a tenth of that, the hysteresis its "node is behind" log
// follows, and only while
// the estimate is fresh (its last sample at most five seconds before now,
// on the clock streams are pushed with): a node that has read no frame
// for that long, its streams ended or silent, is not behind on them. A
// node that is behind has no room for more streams: the realm opens no
// new one meanwhile.
func (e *Engine) Behind(now time.Time) bool {
	return e.lag.behind.Load() && now.UnixMicro()-e.lag.sampledUS.Load() <= lagStaleAfter.Microseconds()
}
