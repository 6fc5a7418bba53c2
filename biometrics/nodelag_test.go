package biometrics

import (
	"context"
	"log/slog"
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
// nodeLag(send time) plus 5–55 ms of the device's own jitter. It returns
// each stream's first clock alarm, as time since the start (zero if none),
// and the engine.
func lagRun(t *testing.T, e *Engine, plans []lagPlan, d time.Duration, nodeLag func(time.Duration) time.Duration) []time.Duration {
	t.Helper()
	start := time.Unix(1_800_000_000, 0)
	streams := make([]*Stream, len(plans))
	for i := range plans {
		streams[i] = e.NewStream("lag-avatar", nil)
		defer streams[i].Close()
	}
	alarms := make([]time.Duration, len(plans))
	const frameEvery, perMessage = 50 * time.Millisecond, 4
	frames := make([]Frame, perMessage)
	for sent := frameEvery * perMessage; sent <= d; sent += frameEvery * perMessage {
		for i, p := range plans {
			for k := range frames {
				at := sent - time.Duration(perMessage-1-k)*frameEvery
				frames[k] = Frame{
					TimeUS: 7_000_000 + uint64(p.seed)*1_000_003 + uint64(float64(at.Microseconds())*p.rate),
					Head:   Pose{Pos: [3]float32{0, 1.6, 0}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
				}
			}
			jitter := 5*time.Millisecond + time.Duration((p.seed*7919+sent.Milliseconds()*104_729)%50)*time.Millisecond
			arrival := sent + nodeLag(sent) + jitter
			for _, ev := range streams[i].Push(frames, start.Add(arrival)) {
				if ev.Kind == EventLiveness && ev.Reason == LivenessClock && alarms[i] == 0 {
					alarms[i] = arrival
				}
			}
		}
	}
	return alarms
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
	log := &records{}
	e := newLagEngine(t, slog.New(log))
	var peak time.Duration
	lagged := func(sent time.Duration) time.Duration {
		peak = max(peak, e.ReadLag())
		return overload(sent)
	}
	for i, at := range lagRun(t, e, plans(40, 1, 0), 100*time.Second, lagged) {
		if at != 0 {
			t.Errorf("stream %d of an overloaded node suspended for impossible timing at %v", i, at)
		}
	}
	// The estimate trails the lag by a sample or two and is taken from the
	// least delayed quarter: it must still have seen most of the 20 s.
	if peak < 15*time.Second || peak > 20*time.Second {
		t.Errorf("peak ReadLag = %v, want between 15 s and the node's 20 s", peak)
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
}

// TestTooFewStreamsGetNoDiscount: below lagMinStreams the node has no
// estimate, and the same overload suspends the streams as the clock check
// always did (which is also what shows the overload above is one the check
// cannot pass on its own).
func TestTooFewStreamsGetNoDiscount(t *testing.T) {
	e := newLagEngine(t, nil)
	alarms := lagRun(t, e, plans(lagMinStreams-1, 1, 0), 100*time.Second, overload)
	for i, at := range alarms {
		if at == 0 {
			t.Errorf("stream %d of %d: no clock alarm while its node fell 20 s behind with too few streams to discount it", i, len(alarms))
		}
	}
	if got := e.ReadLag(); got != 0 {
		t.Errorf("ReadLag with %d streams = %v, want 0", len(alarms), got)
	}
}

// TestSlowClockIsCaughtAmongManyStreams: a device whose clock runs at half
// speed is suspended among forty others as it is alone: at the same moment
// when the node keeps up, and still within 40 s when the node itself falls
// behind all of them.
func TestSlowClockIsCaughtAmongManyStreams(t *testing.T) {
	alone := lagRun(t, newLagEngine(t, nil), plans(1, 0.5, 40), 60*time.Second, onTime)[0]
	if alone == 0 {
		t.Fatal("a device clock at half speed, alone, was never caught")
	}
	crowd := append(plans(40, 1, 0), plans(1, 0.5, 40)...)
	if got := lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, onTime)[40]; got != alone {
		t.Errorf("slow clock among 40 on-time streams: alarm at %v, want %v as alone", got, alone)
	}
	if got := lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, overload)[40]; got == 0 || got > 40*time.Second {
		t.Errorf("slow clock among 40 streams of an overloaded node: alarm at %v, want within 40 s", got)
	}
}

// TestCollidingSlowClocksDoNotShieldThemselves: ten streams with slow
// clocks among forty honest ones climb together, like a node's lag, but
// they are a fifth of the node: they do not move its estimate, and each is
// caught when a lone one would be, whether the node keeps up or not.
func TestCollidingSlowClocksDoNotShieldThemselves(t *testing.T) {
	crowd := append(plans(40, 1, 0), plans(10, 0.5, 40)...)
	e := newLagEngine(t, nil)
	var moved time.Duration
	watch := func(time.Duration) time.Duration { moved = max(moved, e.ReadLag()); return 0 }
	alarms := lagRun(t, e, crowd, 60*time.Second, watch)
	for i := 40; i < 50; i++ {
		if alone := lagRun(t, newLagEngine(t, nil), crowd[i:i+1], 60*time.Second, onTime)[0]; alone == 0 || alarms[i] != alone {
			t.Errorf("colluding slow stream %d: alarm at %v, want %v as alone", i, alarms[i], alone)
		}
	}
	if moved != 0 {
		t.Errorf("ten colluding slow clocks moved the node's ReadLag to %v, want 0", moved)
	}
	alarms = lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, overload)
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
	alarms := lagRun(t, newLagEngine(t, nil), crowd, 60*time.Second, onTime)
	for i, at := range alarms {
		switch {
		case i < 40 && at != 0:
			t.Errorf("honest stream %d suspended at %v beside fast clocks", i, at)
		case i >= 40 && at == 0:
			t.Errorf("fast clock %d never caught", i)
		}
	}
}
