package xr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/cpuload"
	"github.com/zerorealm/zerorealm/internal/testlog"
)

// TestBehindNodeOpensNoNewStream: while the engine says the node is
// behind, a session that already streams here is let in (a second
// connection of it, or its move to a data channel) and a new session is
// refused, saying by how much the node is behind and when to retry; once
// the node has caught up, the new session opens its stream. The engine's
// Behind itself follows its read lag (biometrics
// TestOverloadedNodeSuspendsNoStream).
func TestBehindNodeOpensNoNewStream(t *testing.T) {
	behind, lag := false, time.Duration(0)
	adm := &admission{behind: func(time.Time) (bool, time.Duration) { return behind, lag }}
	reg := registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}
	open := func(id string) (*sessionStream, *BusyError) {
		x, created, busy := reg.acquire(session.Session{ID: id, Avatar: "av-" + id}, adm, time.Now())
		if created {
			x.mu.Unlock()
		}
		return x, busy
	}

	old, busy := open("streaming")
	if busy != nil || old == nil {
		t.Fatalf("a node that keeps up refused a stream: %v", busy)
	}
	behind, lag = true, 1234*time.Millisecond
	if again, busy := open("streaming"); busy != nil || again != old {
		t.Fatalf("a behind node refused a session that already streams on it: %v", busy)
	}
	x, busy := open("new")
	if x != nil || busy == nil {
		t.Fatal("a behind node opened a new stream")
	}
	if busy.Cause != BusyBehind || !errors.Is(busy, ErrNodeBusy) || !strings.Contains(busy.Reason, "behind its XR streams by 1.234s") || busy.RetryAfterSeconds() != 5 {
		t.Fatalf("refusal = %+v, want cause behind, the lag in the reason and a retry after 5 s", busy)
	}
	if n := adm.open.Load(); n != 1 || reg.streams() != 1 {
		t.Fatalf("after a refusal the node counts %d streams and holds %d, want 1", n, reg.streams())
	}

	behind, lag = false, 50*time.Millisecond
	if x, busy := open("new"); busy != nil || x == nil {
		t.Fatalf("a node that caught up refused a new stream: %v", busy)
	}
	if n := adm.open.Load(); n != 2 {
		t.Fatalf("open streams = %d, want 2", n)
	}
}

// TestCapacityCountsStreamsNotConnections: the cap counts sessions'
// streams; a session's second connection takes no second place, and a
// place comes back only when the stream's last connection lets go.
func TestCapacityCountsStreamsNotConnections(t *testing.T) {
	adm := &admission{max: 1, behind: func(time.Time) (bool, time.Duration) { return false, 0 }}
	reg := registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}
	acquire := func(id string) (*sessionStream, *BusyError) {
		x, created, busy := reg.acquire(session.Session{ID: id}, adm, time.Now())
		if created {
			x.mu.Unlock()
		}
		return x, busy
	}
	a1, _ := acquire("a")
	a2, busy := acquire("a")
	if busy != nil || a2 != a1 {
		t.Fatalf("a session's second connection was refused at the cap: %v", busy)
	}
	if _, busy := acquire("b"); busy == nil || busy.Cause != BusyCapacity || busy.RetryAfterSeconds() != 15 || !strings.Contains(busy.Reason, "serves 1 XR streams") {
		t.Fatalf("a new session at the cap = %+v, want a capacity refusal", busy)
	}
	if reg.release(a1, adm) {
		t.Fatal("the stream was freed while a connection still held it")
	}
	if _, busy := acquire("b"); busy == nil {
		t.Fatal("a place came back while the stream still had a connection")
	}
	if !reg.release(a2, adm) {
		t.Fatal("the last connection did not free the stream")
	}
	if _, busy := acquire("b"); busy != nil {
		t.Fatalf("with the stream ended, a new one was refused: %v", busy)
	}
}

// TestNodeShortOfCPUOpensNoNewStream: from 64 streams on, a node whose
// spare CPU (the machine's idle cores, at most what GOMAXPROCS leaves it)
// is under its reserve opens no new stream, and says why; the streams it
// opens between two measurements are charged at the measured cost of one,
// so that a burst of arrivals cannot all pass on one measurement. Below
// 64 streams, without a measurement, or with the reserve off, the CPU
// refuses nothing.
func TestNodeShortOfCPUOpensNoNewStream(t *testing.T) {
	adm := &admission{behind: func(time.Time) (bool, time.Duration) { return false, 0 }}
	adm.cpu.cores, adm.cpu.reserve = 2, 0.2
	reg := registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}
	n := 0
	openNew := func() (*sessionStream, *BusyError) {
		n++
		x, created, busy := reg.acquire(session.Session{ID: fmt.Sprint("s", n)}, adm, time.Now())
		if created {
			x.mu.Unlock()
		}
		return x, busy
	}
	machine := func(process, idle float64) cpuload.Rates {
		return cpuload.Rates{ProcessCores: process, IdleCores: idle, MachineKnown: true}
	}

	// No idle core at all, but fewer than 64 streams: they are not what
	// fills the machine.
	adm.cpu.measured(machine(0.1, 0), true, 0)
	for range minCPUStreams {
		if _, busy := openNew(); busy != nil {
			t.Fatalf("stream %d refused below %d streams: %v", n, minCPUStreams, busy)
		}
	}

	// 64 streams take a core and the machine has 0.1 idle: under 0.2.
	adm.cpu.measured(machine(1, 0.1), true, adm.open.Load())
	first := reg.session("s1")
	if x, created, busy := reg.acquire(first.sess, adm, time.Now()); busy != nil || created || x != first {
		t.Fatalf("a session that already streams was refused for CPU: %v", busy)
	}
	x, busy := openNew()
	if x != nil || busy == nil {
		t.Fatal("a node without CPU to spare opened a new stream")
	}
	if busy.Cause != BusyCPU || !errors.Is(busy, ErrNodeBusy) || busy.RetryAfterSeconds() != 15 ||
		!strings.Contains(busy.Reason, "0.10 cores of CPU to spare, under its reserve of 0.20") ||
		!strings.Contains(busy.Reason, "64 XR streams at 15.62 ms of CPU a second each") {
		t.Fatalf("refusal = %+v, want cause cpu with the spare cores, the reserve and the cost per stream", busy)
	}

	// Half a core idle: room for (0.5 - 0.2) / (1/64) = 19.2 streams, so
	// 20 open (the 20th still sees 0.203) and the 21st is refused.
	adm.cpu.measured(machine(1, 0.5), true, adm.open.Load())
	admitted := 0
	for admitted <= 100 {
		if _, busy := openNew(); busy != nil {
			if busy.Cause != BusyCPU {
				t.Fatalf("refused for %s, want cpu", busy.Cause)
			}
			break
		}
		admitted++
	}
	if admitted != 20 {
		t.Fatalf("opened %d streams on half an idle core, want 20: those opened since the measurement are charged", admitted)
	}

	// Idle cores the node cannot use do not count: GOMAXPROCS 2 and 1.9
	// of them busy leaves 0.1, however idle the rest of the machine is.
	adm.cpu.measured(machine(1.9, 6), true, adm.open.Load())
	if _, busy := openNew(); busy == nil || busy.Cause != BusyCPU {
		t.Fatalf("a node using 1.9 of its 2 cores opened a stream: %v", busy)
	}

	// Where the machine is unknown, the node's own cores decide.
	adm.cpu.measured(cpuload.Rates{ProcessCores: 1}, true, adm.open.Load())
	if _, busy := openNew(); busy != nil {
		t.Fatalf("a node using 1 of its 2 cores on an unknown machine refused: %v", busy)
	}
	// Without a measurement, or with the reserve off, CPU refuses nothing.
	adm.cpu.measured(cpuload.Rates{}, false, adm.open.Load())
	if _, busy := openNew(); busy != nil {
		t.Fatalf("a node that could not measure its CPU refused: %v", busy)
	}
	adm.cpu.measured(machine(2, 0), true, adm.open.Load())
	adm.cpu.reserve = 0
	if _, busy := openNew(); busy != nil {
		t.Fatalf("with the reserve off, a node refused for CPU: %v", busy)
	}
}

// TestServiceMeasuresItsCPU: each reading gives admission the rates over
// the last five seconds, and a reading that fails takes the measurement
// away (admitting as if unmeasured) until two good ones come again. The
// loop takes one at once and one a second.
func TestServiceMeasuresItsCPU(t *testing.T) {
	var mu sync.Mutex
	var process, idle time.Duration
	var readErr error
	meter := cpuload.NewMeter(0, func() (cpuload.Reading, error) {
		mu.Lock()
		defer mu.Unlock()
		process += 1500 * time.Millisecond
		idle += 100 * time.Millisecond
		return cpuload.Reading{Process: process, MachineIdle: idle, MachineKnown: true}, readErr
	})
	s := &Service{log: testlog.New(t)}
	s.admit.behind = func(time.Time) (bool, time.Duration) { return false, 0 }
	s.admit.cpu.cores, s.admit.cpu.reserve = 2, 0.2
	s.admit.open.Store(100)
	m := cpuMeasure{s: s, meter: meter}
	t0 := time.Unix(1000, 0)

	m.take(t0)
	if v := s.admit.cpu.view.Load(); v != nil {
		t.Fatalf("one reading gave a measurement: %+v", v)
	}
	m.take(t0.Add(time.Second))
	v := s.admit.cpu.view.Load()
	if v == nil || math.Abs(v.spare-0.1) > 1e-9 || math.Abs(v.perStream-0.015) > 1e-9 || v.streams != 100 {
		t.Fatalf("after two readings: %+v, want 0.1 spare (the idle cores) and 15 ms a stream", v)
	}
	if busy := s.admit.check(t0); busy == nil || busy.Cause != BusyCPU {
		t.Fatalf("a node 0.1 cores from full opened a stream: %v", busy)
	}

	readErr = errors.New("no /proc")
	m.take(t0.Add(2 * time.Second))
	if v := s.admit.cpu.view.Load(); v != nil {
		t.Fatalf("after a failed reading the measurement is %+v, want none", v)
	}
	if busy := s.admit.check(t0); busy != nil {
		t.Fatalf("an unmeasured node refused: %v", busy)
	}
	if !math.IsNaN(s.admit.cpu.seen(func(v *cpuView) float64 { return v.spare })) {
		t.Fatal("the spare-cores metric shows a value without a measurement")
	}
	readErr = nil
	m.take(t0.Add(3 * time.Second))
	m.take(t0.Add(4 * time.Second))
	if v := s.admit.cpu.view.Load(); v == nil {
		t.Fatal("no measurement after two good readings again")
	}

	// The loop: a reading at once, the next when a second has passed.
	s.admit.cpu.view.Store(nil)
	clk := clock.NewManual(t0.Add(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.measureCPU(ctx, clk, meter) }()
	defer func() { cancel(); <-done }()
	if err := clk.WaitArmed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	for deadline := time.Now().Add(10 * time.Second); s.admit.cpu.view.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the loop gave admission no measurement after its second reading")
		}
	}
}
