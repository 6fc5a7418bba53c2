package biometrics

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lagPlan is one streaming device in a node-lag scenario: its clock runs
// at rate times real time, and its messages reach the node after the
// node's own lag plus the device's network jitter.
type lagPlan struct {
	rate float64
	seed int64 // picks the device's clock origin and its jitter
	// starved: while the node is behind, the stream's reader runs only
	// every this often and then reads everything waiting, as a starved
	// scheduler runs a node's thousand readers.
	starved time.Duration
	// creep is the stream's own latency growing, in seconds a second.
	creep float64
	// readLate delays this stream's reads alone, beyond the node's lag:
	// a reader the scheduler runs later than the others.
	readLate func(time.Duration) time.Duration
	// stamped: the node knows when the machine received each message
	// (the kernel's stamp, Stream.PushReceived) as well as when it read it.
	stamped bool
}

// overload is a node falling 20 s behind its sockets: on time for 10 s,
// then reading half a second later every second for 40 s, staying 20 s
// behind for 10 s, then draining its backlog at ten times real time
// (everything it missed is read in 2.2 s of every 22), on time again from
// 82 s.
func overload(t time.Duration) time.Duration {
	s := t.Seconds()
	var lag float64
	switch {
	case s < 10:
	case s < 50:
		lag = (s - 10) / 2
	case s < 60:
		lag = 20
	case s < 60+20/0.9:
		lag = 20 - (s-60)*0.9
	}
	return time.Duration(lag * float64(time.Second))
}

func onTime(time.Duration) time.Duration { return 0 }

// lagRun streams every plan into one engine for d of real time, in
// messages of 4 frames at 20 Hz, each read by the node at send time plus
// nodeLag(send time) plus 5–55 ms of the device's own jitter, in the
// order the node reads them. It returns each stream's first clock alarm,
// as the time the node read it since the start (zero if none), and the
// highest ReadLag the engine had after any message.
func lagRun(t *testing.T, e *Engine, plans []lagPlan, d time.Duration, nodeLag func(time.Duration) time.Duration) ([]time.Duration, time.Duration) {
	alarms, peak, _, _ := lagRunBehind(t, e, plans, d, nodeLag)
	return alarms, peak
}

// lagRunBehind is lagRun, and also how many messages the engine was
// Behind for and when the last one arrived.
func lagRunBehind(t *testing.T, e *Engine, plans []lagPlan, d time.Duration, nodeLag func(time.Duration) time.Duration) ([]time.Duration, time.Duration, int, time.Time) {
	t.Helper()
	start := time.Unix(1_800_000_000, 0)
	streams := make([]*Stream, len(plans))
	for i := range plans {
		streams[i] = e.NewStream("lag-avatar", nil)
		defer streams[i].Close()
	}
	type message struct {
		stream                  int
		sent, received, arrival time.Duration
	}
	const frameEvery, perMessage = 50 * time.Millisecond, 4
	var msgs []message
	for i, p := range plans {
		var last time.Duration
		for sent := frameEvery * perMessage; sent <= d; sent += frameEvery * perMessage {
			jitter := 5*time.Millisecond + time.Duration((p.seed*7919+sent.Milliseconds()*104_729)%50)*time.Millisecond
			lag := nodeLag(sent)
			received := sent + jitter + time.Duration(p.creep*float64(sent))
			arrival := received + lag
			if p.readLate != nil {
				arrival += p.readLate(sent)
			}
			if p.starved > 0 && lag > 0 {
				arrival = (arrival/p.starved + 1) * p.starved
			}
			arrival = max(arrival, last) // a socket is read in order
			last = arrival
			msgs = append(msgs, message{stream: i, sent: sent, received: received, arrival: arrival})
		}
	}
	slices.SortStableFunc(msgs, func(a, b message) int { return cmp.Compare(a.arrival, b.arrival) })
	alarms := make([]time.Duration, len(plans))
	var peak time.Duration
	behind := 0
	var last time.Time
	frames := make([]Frame, perMessage)
	for _, m := range msgs {
		p := plans[m.stream]
		for k := range frames {
			at := m.sent - time.Duration(perMessage-1-k)*frameEvery
			frames[k] = Frame{
				TimeUS: 7_000_000 + uint64(p.seed)*1_000_003 + uint64(float64(at.Microseconds())*p.rate),
				Head:   Pose{Pos: [3]float32{0, 1.6, 0}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
			}
		}
		received := m.arrival
		if p.stamped {
			received = m.received
		}
		for _, ev := range streams[m.stream].PushReceived(frames, start.Add(received), start.Add(m.arrival)) {
			if ev.Kind == EventLiveness && ev.Reason == LivenessClock && alarms[m.stream] == 0 {
				alarms[m.stream] = m.arrival
			}
		}
		peak = max(peak, e.ReadLag())
		now := start.Add(m.arrival)
		last = now
		if e.Behind(now) {
			behind++
		}
		// Behind follows the estimate and the socket queue with the log's
		// hysteresis: never behind with both under a tenth of a second,
		// always with either from a second up.
		lag, queue := e.ReadLag(), e.SocketQueue()
		if (lag < lagCaughtUpBelow && queue < lagCaughtUpBelow && e.Behind(now)) || ((lag >= lagBehindFrom || queue >= lagBehindFrom) && !e.Behind(now)) {
			t.Fatalf("Behind() = %v with ReadLag %v, SocketQueue %v", e.Behind(now), lag, queue)
		}
	}
	return alarms, peak, behind, last
}

func newLagEngine(t *testing.T, log *slog.Logger) *Engine {
	t.Helper()
	e, err := NewEngine(Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// plans are n devices with clocks at rate, seeded from firstSeed on.
func plans(n int, rate float64, firstSeed int64) []lagPlan {
	p := make([]lagPlan, n)
	for i := range p {
		p[i] = lagPlan{rate: rate, seed: firstSeed + int64(i)}
	}
	return p
}

// records keeps the messages a logger was given.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// TestOverloadedNodeSuspendsNoStream: forty honest headsets on a node that
// falls 20 s behind them and then catches up. Every stream's offset climbs
// by the node's lag and falls back; the node's estimate takes it out of
// their clock checks, so none is suspended, and the node says once that it
// is behind and once that it caught up.
func TestOverloadedNodeSuspendsNoStream(t *testing.T) {
	for name, crowd := range map[string][]lagPlan{
		"every reader runs": plans(40, 1, 0),
		// Readers that run every 1, 2 or 3 s while the node is behind:
		// most streams send nothing in most samples.
		"starved readers": starve(plans(40, 1, 0), time.Second, 2*time.Second, 3*time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			log := &records{}
			e := newLagEngine(t, slog.New(log))
			alarms, peak, behind, last := lagRunBehind(t, e, crowd, 100*time.Second, overload)
			if behind == 0 {
				t.Error("the engine never said it was Behind while 20 s behind its streams")
			}
			if e.Behind(last) {
				t.Error("Behind() after catching up")
			}
			for i, at := range alarms {
				if at != 0 {
					t.Errorf("stream %d of an overloaded node suspended for impossible timing at %v", i, at)
				}
			}
			// The estimate trails the lag by a sample or two, is taken from
			// the least delayed quarter, and starved readers' word is up to
			// 3 s old: it must still have seen most of the 20 s.
			if peak < 12*time.Second || peak > 20*time.Second {
				t.Errorf("peak ReadLag = %v, want between 12 s and the node's 20 s", peak)
			}
			if got := e.ReadLag(); got != 0 {
				t.Errorf("ReadLag after catching up = %v, want 0", got)
			}
			if n := log.count("WARN node is behind"); n != 1 {
				t.Errorf("logged being behind %d times, want once", n)
			}
			if n := log.count("INFO node caught up"); n != 1 {
				t.Errorf("logged catching up %d times, want once", n)
			}
		})
	}
}

// starve gives the plans' readers the periods in turn.
func starve(p []lagPlan, every ...time.Duration) []lagPlan {
	for i := range p {
		p[i].starved = every[i%len(every)]
	}
	return p
}

// TestTooFewStreamsGetNoDiscount: below lagMinStreams the node has no
// estimate and no discount, and the same overload suspends the streams as
// the clock check always did (which is also what shows the overload above
// is one the check cannot pass on its own).
func TestTooFewStreamsGetNoDiscount(t *testing.T) {
	alarms, peak := lagRun(t, newLagEngine(t, nil), plans(lagMinStreams-1, 1, 0), 100*time.Second, overload)
	for i, at := range alarms {
		if at == 0 {
			t.Errorf("stream %d of %d: no clock alarm while its node fell 20 s behind with too few streams to discount it", i, len(alarms))
		}
	}
	if peak != 0 {
		t.Errorf("ReadLag with %d streams reached %v, want 0", len(alarms), peak)
	}
}

// TestSlowClockIsCaughtAmongManyStreams: a device whose clock runs at half
// speed is suspended among forty others as it is alone: at the same moment
// when the node keeps up, and still within 40 s when the node itself falls
// behind all of them.
func TestSlowClockIsCaughtAmongManyStreams(t *testing.T) {
	alone, _ := lagRun(t, newLagEngine(t, nil), plans(1, 0.5, 40), 60*time.Second, onTime)
	if alone[0] == 0 {
		t.Fatal("a device clock at half speed, alone, was never caught")
	}
	crowd := append(plans(40, 1, 0), plans(1, 0.5, 40)...)
	if got, _ := lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, onTime); got[40] != alone[0] {
		t.Errorf("slow clock among 40 on-time streams: alarm at %v, want %v as alone", got[40], alone[0])
	}
	if got, _ := lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, overload); got[40] == 0 || got[40] > 40*time.Second {
		t.Errorf("slow clock among 40 streams of an overloaded node: alarm at %v, want within 40 s", got[40])
	}
}

// TestCollidingSlowClocksDoNotShieldThemselves: ten streams with slow
// clocks among forty honest ones climb together, like a node's lag, but
// they are a fifth of the node: they do not move its estimate, and each is
// caught when a lone one would be, whether the node keeps up or not.
func TestCollidingSlowClocksDoNotShieldThemselves(t *testing.T) {
	crowd := append(plans(40, 1, 0), plans(10, 0.5, 40)...)
	alarms, moved := lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, onTime)
	for i := 40; i < 50; i++ {
		if alone, _ := lagRun(t, newLagEngine(t, nil), crowd[i:i+1], 60*time.Second, onTime); alone[0] == 0 || alarms[i] != alone[0] {
			t.Errorf("colluding slow stream %d: alarm at %v, want %v as alone", i, alarms[i], alone[0])
		}
	}
	if moved != 0 {
		t.Errorf("ten colluding slow clocks moved the node's ReadLag to %v, want 0", moved)
	}
	alarms, _ = lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, overload)
	for i := 40; i < 50; i++ {
		if alarms[i] == 0 || alarms[i] > 40*time.Second {
			t.Errorf("colluding slow stream %d of an overloaded node: alarm at %v, want within 40 s", i, alarms[i])
		}
	}
	for i := range 40 {
		if alarms[i] != 0 {
			t.Errorf("honest stream %d of an overloaded node with colluders suspended at %v", i, alarms[i])
		}
	}
}

// TestFastClocksDoNotTurnTheEstimateOnHonestStreams: devices whose clocks
// run fast have offsets that fall; with more than a quarter of the node's
// streams they own its low quantile. A negative lag would then make every
// honest stream's clock look slow, so the estimate stops at zero: the
// fast clocks are caught, and the honest streams are not.
func TestFastClocksDoNotTurnTheEstimateOnHonestStreams(t *testing.T) {
	crowd := append(plans(40, 1, 0), plans(20, 1.5, 40)...)
	alarms, _ := lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, onTime)
	for i, at := range alarms {
		switch {
		case i < 40 && at != 0:
			t.Errorf("honest stream %d suspended at %v beside fast clocks", i, at)
		case i >= 40 && at == 0:
			t.Errorf("fast clock %d never caught", i)
		}
	}
}

// stall is a node that stops reading for 6 s at 30 s (a burst of
// enrollments, the collector), stays 6 s behind for 30 s and drains its
// backlog at ten times real time.
func stall(t time.Duration) time.Duration {
	s := t.Seconds()
	var lag float64
	switch {
	case s < 30:
	case s < 60:
		lag = 6
	case s < 60+6/0.9:
		lag = 6 - (s-60)*0.9
	}
	return time.Duration(lag * float64(time.Second))
}

// creeping gives each plan's latency a growth of 1 to 4 ms a second, a
// hair that makes its clock buckets rise but that the node's estimate,
// the lowest quarter's, takes out of only some of them.
func creeping(p []lagPlan) []lagPlan {
	for i := range p {
		p[i].creep = float64(1+i%4) / 1000
	}
	return p
}

// TestNodeStallSuspendsNoStream: a node that stops reading for 6 s while
// its streams' latencies creep up by a hair. Each stream's offset steps
// up by 6 s at once, more than the 5 s the clock check allows over 20 s,
// after four buckets that rose by a hair each, and the node's estimate
// takes a second to see the step. A step that makes most of a climb is
// judged when its bucket is complete, by when it is discounted: no stream
// is suspended. Below lagMinStreams, with no discount, the step is judged
// as before, a bucket later; and a clock at half speed, whose climb is
// even, is still caught when it would be alone.
func TestNodeStallSuspendsNoStream(t *testing.T) {
	alarms, peak := lagRun(t, newLagEngine(t, nil), creeping(plans(40, 1, 0)), 90*time.Second, stall)
	for i, at := range alarms {
		if at != 0 {
			t.Errorf("stream %d suspended for a 6 s node stall at %v", i, at)
		}
	}
	if peak < 5*time.Second {
		t.Errorf("peak ReadLag = %v, want at least 5 s of the 6 s stall", peak)
	}
	alarms, _ = lagRun(t, newLagEngine(t, nil), creeping(plans(lagMinStreams-1, 1, 0)), 90*time.Second, stall)
	for i, at := range alarms {
		if at == 0 {
			t.Errorf("stream %d of %d: no clock alarm for a 6 s step without a discount", i, len(alarms))
		}
	}
}

// TestBehindEndsWithItsStreams: a node whose streams all end, or fall
// silent, while it is behind them is behind no longer once its estimate
// is five sample spans old: no frame means no backlog, and a node that
// refuses new streams while behind would otherwise refuse them for ever.
func TestBehindEndsWithItsStreams(t *testing.T) {
	e := newLagEngine(t, slog.New(slog.DiscardHandler))
	climbing := func(sent time.Duration) time.Duration { return max(0, sent-10*time.Second) / 2 }
	_, _, behind, last := lagRunBehind(t, e, plans(40, 1, 0), 30*time.Second, climbing)
	if behind == 0 || !e.Behind(last) {
		t.Fatalf("a node 10 s behind its streams at the end of the run: Behind = %v (%d messages behind), want true", e.Behind(last), behind)
	}
	if !e.Behind(last.Add(lagStaleAfter - lagSampleEvery)) {
		t.Error("behind no longer before the estimate is stale")
	}
	if e.Behind(last.Add(lagStaleAfter + lagSampleEvery)) {
		t.Errorf("still behind %v after the last frame read", lagStaleAfter+lagSampleEvery)
	}
}

// TestUnevenLagSuspendsNoStampedStream: the scheduler of a busy node runs
// ten readers of fifty later and later (overload's 20 s, for them alone).
// Ten are a fifth of the node, under the quarter its estimate takes, so
// the estimate stays at zero and cannot discount it: read at the read,
// they look like slow device clocks and are suspended. With the kernel's
// stamp of when their bytes reached the machine, none is; a device clock
// at half speed among the starved ones is still caught, and so is one
// whose own network delay creeps.
func TestUnevenLagSuspendsNoStampedStream(t *testing.T) {
	starved := func(stamped bool) []lagPlan {
		crowd := plans(40, 1, 0)
		for i := range 10 {
			crowd = append(crowd, lagPlan{rate: 1, seed: int64(40 + i), readLate: overload, stamped: stamped})
		}
		return crowd
	}
	alarms, peak := lagRun(t, newLagEngine(t, nil), starved(false), 100*time.Second, onTime)
	if peak != 0 {
		t.Fatalf("ten starved readers of fifty moved ReadLag to %v; the scenario needs them unseen", peak)
	}
	for i := 40; i < 50; i++ {
		if alarms[i] == 0 {
			t.Errorf("starved stream %d judged at its reads: no alarm; the scenario needs the unstamped check to fail", i)
		}
	}
	alarms, _ = lagRun(t, newLagEngine(t, nil), starved(true), 100*time.Second, onTime)
	for i, at := range alarms {
		if at != 0 {
			t.Errorf("stream %d (starved: %v) with receive stamps suspended at %v", i, i >= 40, at)
		}
	}

	cheats := append(starved(true),
		lagPlan{rate: 0.5, seed: 50, readLate: overload, stamped: true},
		lagPlan{rate: 1, seed: 51, readLate: overload, stamped: true, creep: 0.5})
	alarms, _ = lagRun(t, newLagEngine(t, nil), cheats, 100*time.Second, onTime)
	for i, what := range map[int]string{50: "a device clock at half speed", 51: "a device whose own latency creeps"} {
		if alarms[i] == 0 || alarms[i] > 60*time.Second {
			t.Errorf("%s among starved stamped readers: alarm at %v, want within 60 s", what, alarms[i])
		}
	}
}

// TestStampedStreamsOfAnOverloadedNode: when the whole node falls behind,
// its estimate sees the lag in what every stream read, but a stamped
// stream's received times do not carry it. Discounting it from them
// would hide a device's own climb under the node's: a device clock at
// 0.7 times real time climbs 0.3 s a second, less than this node's lag
// (0.5 s a second), and is still caught within 40 s of reading, as on a
// node that keeps up (about 20 s); the honest streams are not suspended.
func TestStampedStreamsOfAnOverloadedNode(t *testing.T) {
	crowd := plans(40, 1, 0)
	for i := range crowd {
		crowd[i].stamped = true
	}
	slow := append(crowd, lagPlan{rate: 0.7, seed: 40, stamped: true})
	alarms, peak := lagRun(t, newLagEngine(t, nil), slow, 100*time.Second, overload)
	if peak < lagBehindFrom {
		t.Fatalf("ReadLag peaked at %v: the scenario needs the node seen behind", peak)
	}
	if alarms[40] == 0 || alarms[40] > 40*time.Second {
		t.Errorf("stamped clock at 0.7 on an overloaded node: alarm at %v, want within 40 s", alarms[40])
	}
	for i := range 40 {
		if alarms[i] != 0 {
			t.Errorf("honest stamped stream %d of an overloaded node suspended at %v", i, alarms[i])
		}
	}
}

// TestStarvedSocketsPutTheNodeBehind: ten readers of fifty starved by up
// to 20 s leave the offsets' estimate at zero, but their sockets' receive
// queues, stamped by the kernel, show the wait: the node is behind (and
// opens no new stream) while a tenth of its stamped streams wait a second
// or more, and is not once they are read on time again. Without stamps
// it never knows; on time, it is never behind.
func TestStarvedSocketsPutTheNodeBehind(t *testing.T) {
	starved := func(stamped bool) []lagPlan {
		crowd := plans(40, 1, 0)
		for i := range crowd {
			crowd[i].stamped = stamped
		}
		for i := range 10 {
			crowd = append(crowd, lagPlan{rate: 1, seed: int64(40 + i), readLate: overload, stamped: stamped})
		}
		return crowd
	}
	e := newLagEngine(t, nil)
	_, peak, behind, last := lagRunBehind(t, e, starved(true), 100*time.Second, onTime)
	if peak != 0 {
		t.Errorf("ReadLag reached %v; the scenario needs it blind to the starved readers", peak)
	}
	if behind == 0 {
		t.Error("never behind while a fifth of its stamped sockets waited up to 20 s")
	}
	if e.Behind(last) || e.SocketQueue() >= lagCaughtUpBelow {
		t.Errorf("still behind (socket queue %v) at the end, 18 s after every socket was read on time again", e.SocketQueue())
	}
	if _, _, behind, _ := lagRunBehind(t, newLagEngine(t, nil), starved(false), 100*time.Second, onTime); behind != 0 {
		t.Errorf("behind for %d messages without stamps, which cannot see the starved readers", behind)
	}
	onTimeEngine := newLagEngine(t, nil)
	if _, _, behind, _ := lagRunBehind(t, onTimeEngine, plans(50, 1, 0), 100*time.Second, onTime); behind != 0 {
		t.Errorf("behind for %d messages on time", behind)
	}
}
