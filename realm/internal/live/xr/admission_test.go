package xr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/cpuload"
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
// is under its reserve opens no new stream, and says why. The streams it
// opened lately are charged at the measured cost of one, for the share of
// it the 5 s average does not hold yet, so that a burst of arrivals, or of
// refused clients retrying together, cannot all pass on one measurement,
// nor on the next ones of the same window. Below 64 streams, without a
// measurement, or with the reserve off, the CPU refuses nothing.
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
	// openAll opens new streams until one is refused, and says how many
	// opened and why the last was refused.
	openAll := func() (int, *BusyError) {
		for opened := 0; opened <= 200; opened++ {
			if _, busy := openNew(); busy != nil {
				return opened, busy
			}
		}
		t.Fatal("opened 200 streams and none was refused")
		return 0, nil
	}
	machine := func(process, idle float64) cpuload.Rates {
		return cpuload.Rates{ProcessCores: process, IdleCores: idle, MachineKnown: true}
	}
	// settled is the same measurement for long enough that every stream
	// opened before it is in its average, and no earlier measurement's
	// spare CPU is remembered.
	settled := func(r cpuload.Rates, streams int64) {
		for range max(cpuWindowSteps, cpuSpareSteps) + 1 {
			adm.cpu.measured(r, true, streams)
		}
	}

	// No idle core at all, but fewer than 64 streams: they are not what
	// fills the machine.
	settled(machine(0.1, 0), 0)
	for range minCPUStreams {
		if _, busy := openNew(); busy != nil {
			t.Fatalf("stream %d refused below %d streams: %v", n, minCPUStreams, busy)
		}
	}

	// 64 streams take a core and the machine has 0.1 idle: under 0.2.
	settled(machine(1, 0.1), 64)
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
	settled(machine(1, 0.5), 64)
	if opened, busy := openAll(); opened != 20 || busy.Cause != BusyCPU {
		t.Fatalf("opened %d streams on half an idle core (then %v), want 20: those opened since the measurement are charged", opened, busy)
	}
	// A second later the machine still shows half a core idle, but the
	// 20 streams are only a tenth in that 5 s average: 0.5 - 20 * 0.9 /
	// 84 = 0.286 leaves room for 7.2 more at 1/84 each, so 8, not the 25
	// that the same spare CPU would take with nothing opened lately.
	adm.cpu.measured(machine(1, 0.5), true, 84)
	if opened, _ := openAll(); opened != 8 {
		t.Fatalf("opened %d streams a second after 20 others, want 8: the streams opened within the window are still charged", opened)
	}
	// A neighbour pauses: for one measurement the machine has 1.5 cores
	// idle. The least spare CPU of the last 10 s is what counts, 0.5, less
	// the 8 and 20 streams opened in the last two seconds (0.9 and 0.7 of
	// them unseen, at 1/92 each): room for 6.4, so 7, not the 98 that
	// 1.5 idle cores would take.
	adm.cpu.measured(machine(1, 1.5), true, 92)
	if opened, _ := openAll(); opened != 7 {
		t.Fatalf("opened %d streams when a neighbour paused for a second, want 7: the least spare CPU of the last 10 s counts", opened)
	}

	// Idle cores the node cannot use do not count: GOMAXPROCS 2 and 1.9
	// of them busy leaves 0.1, however idle the rest of the machine is.
	settled(machine(1.9, 6), adm.open.Load())
	if _, busy := openNew(); busy == nil || busy.Cause != BusyCPU {
		t.Fatalf("a node using 1.9 of its 2 cores opened a stream: %v", busy)
	}

	// Where the machine is unknown, the node's own cores decide.
	settled(cpuload.Rates{ProcessCores: 1}, adm.open.Load())
	if _, busy := openNew(); busy != nil {
		t.Fatalf("a node using 1 of its 2 cores on an unknown machine refused: %v", busy)
	}
	// Without a measurement, or with the reserve off, CPU refuses nothing.
	adm.cpu.measured(cpuload.Rates{}, false, adm.open.Load())
	if _, busy := openNew(); busy != nil {
		t.Fatalf("a node that could not measure its CPU refused: %v", busy)
	}
	settled(machine(2, 0), adm.open.Load())
	adm.cpu.reserve = 0
	if _, busy := openNew(); busy != nil {
		t.Fatalf("with the reserve off, a node refused for CPU: %v", busy)
	}
}

// TestServiceMeasuresItsCPU: each reading gives admission the rates over
// the last five seconds. A reading that fails keeps the last measurement
// (and the meter needs two good readings again); readings that fail for
// 10 s take it away, admitting as if unmeasured, until two good ones come
// again. The loop takes one at once and one a second.
func TestServiceMeasuresItsCPU(t *testing.T) {
	var mu sync.Mutex
	var process, idle time.Duration
	idleStep := 100 * time.Millisecond // idle cores, in seconds of idle a second
	var readErr error
	meter := cpuload.NewMeter(0, func() (cpuload.Reading, error) {
		mu.Lock()
		defer mu.Unlock()
		process += 1500 * time.Millisecond
		idle += idleStep
		return cpuload.Reading{Process: process, MachineIdle: idle, MachineKnown: true}, readErr
	})
	logs := &logRecords{}
	s := &Service{log: slog.New(logs)}
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
	if got := logs.messages(); len(got) != 1 || !strings.HasPrefix(got[0], "WARN node has no CPU to spare for new XR streams") {
		t.Fatalf("logged %q, want one warning that the node is short of CPU", got)
	}

	readErr = errors.New("no /proc")
	m.take(t0.Add(2 * time.Second))
	if got := s.admit.cpu.view.Load(); got != v {
		t.Fatalf("after one failed reading the measurement is %+v, want the last one kept", got)
	}
	if busy := s.admit.check(t0); busy == nil || busy.Cause != BusyCPU {
		t.Fatalf("a node 0.1 cores from full opened a stream when one reading failed: %v", busy)
	}
	for i := 3; i <= cpuSpareSteps+1; i++ {
		m.take(t0.Add(time.Duration(i) * time.Second))
	}
	if v := s.admit.cpu.view.Load(); v != nil {
		t.Fatalf("after readings failed for %d s the measurement is %+v, want none", cpuSpareSteps, v)
	}
	if busy := s.admit.check(t0); busy != nil {
		t.Fatalf("an unmeasured node refused: %v", busy)
	}
	if !math.IsNaN(s.admit.cpu.seen(func(v *cpuView) float64 { return v.spare })) {
		t.Fatal("the spare-cores metric shows a value without a measurement")
	}
	readErr = nil
	m.take(t0.Add(20 * time.Second))
	m.take(t0.Add(21 * time.Second))
	if v := s.admit.cpu.view.Load(); v == nil {
		t.Fatal("no measurement after two good readings again")
	}
	// Measured again and still short: said again, once. Then the machine
	// has CPU to spare: said once.
	mu.Lock()
	idleStep = time.Second
	mu.Unlock()
	for i := 22; i <= 22+cpuSpareSteps; i++ {
		m.take(t0.Add(time.Duration(i) * time.Second))
	}
	got := logs.messages()
	want := []string{"WARN node has no CPU to spare", "WARN cannot read this node's CPU", "WARN node has no CPU to spare", "INFO node has CPU to spare for new XR streams again"}
	if len(got) != len(want) {
		t.Fatalf("logged %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("logged %q, want %q", got, want)
		}
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

// logRecords keeps the level and message of every record logged to it.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}

func (l *logRecords) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// TestShedPaceCountsEachSecondOnce: sheds are paced at 2 % of the open
// streams a second, at least one, a second's worth at most; calls whose
// times come slightly out of order (each reader passes the time it
// started on its message) refill nothing twice.
func TestShedPaceCountsEachSecondOnce(t *testing.T) {
	var p shedPace
	t0 := time.Unix(1_800_000_000, 0)
	taken := func(now time.Time, open int64, tries int) int {
		n := 0
		for range tries {
			if p.take(now, open) {
				n++
			}
		}
		return n
	}
	if n := taken(t0, 1000, 100); n != 20 {
		t.Fatalf("first second of a node of 1,000: %d shed, want 20", n)
	}
	// Half a second on, then calls from a quarter second back and from
	// now again, alternating: the half second refills 10, once.
	n := 0
	for i := range 40 {
		at := t0.Add(500 * time.Millisecond)
		if i%2 == 1 {
			at = t0.Add(250 * time.Millisecond)
		}
		n += taken(at, 1000, 1)
	}
	if n != 10 {
		t.Fatalf("half a second of calls out of order: %d shed, want 10", n)
	}
	if n := taken(t0.Add(time.Hour), 1000, 100); n != 20 {
		t.Fatalf("after an hour: %d shed, want a second's worth, 20", n)
	}
	if n := taken(t0.Add(time.Hour+time.Second), 10, 100); n != 1 {
		t.Fatalf("a node of 10, a second later: %d shed, want at least one a second", n)
	}
}

// TestShedNodeOpensNewStreamsBelowWhatItKept: a node that shed streams
// opens new ones only below the streams it kept, and raises that ceiling
// by 1 % (at least one stream) every 10 s it sheds none, so that streams
// coming back after their retry time do not put it straight back where
// it had to shed; it drops the ceiling after 10 min without a shed, and a
// node of fewer than 64 streams is never held by it. Sessions already
// streaming here are let in whatever the ceiling.
func TestShedNodeOpensNewStreamsBelowWhatItKept(t *testing.T) {
	adm := &admission{behind: func(time.Time) (bool, time.Duration) { return false, 0 }}
	reg := registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}
	t0 := time.Unix(1_800_000_000, 0)
	next := 0
	var opened []*sessionStream
	open := func(now time.Time, id string) *BusyError {
		x, created, busy := reg.acquire(session.Session{ID: id, Avatar: "av-" + id}, adm, now)
		if created {
			x.mu.Unlock()
			opened = append(opened, x)
		}
		return busy
	}
	openNew := func(now time.Time) *BusyError {
		next++
		return open(now, fmt.Sprint("s", next))
	}
	shedOne := func(now time.Time) {
		reg.release(opened[len(opened)-1], adm)
		opened = opened[:len(opened)-1]
		adm.ceiling.shed(now, adm.open.Load())
	}
	for range 250 {
		if busy := openNew(t0); busy != nil {
			t.Fatalf("a node that never shed refused stream %d: %v", next, busy)
		}
	}

	// Shedding, one stream at a time, leaves 200 open: the ceiling.
	for range 50 {
		shedOne(t0)
	}
	if n := adm.open.Load(); n != 200 {
		t.Fatalf("open after shedding: %d, want 200", n)
	}
	busy := openNew(t0.Add(time.Second))
	if busy == nil || busy.Cause != BusyShed || !errors.Is(busy, ErrNodeBusy) || busy.RetryAfterSeconds() != 15 ||
		!strings.Contains(busy.Reason, "only below the 200 it kept") || !strings.Contains(busy.Reason, "shed XR streams 1s ago") {
		t.Fatalf("a new stream at the ceiling: %+v, want cause shed, the 200 kept, when it shed, and a retry after 15 s", busy)
	}
	if busy := open(t0.Add(time.Second), "s1"); busy != nil {
		t.Fatalf("a session already streaming was refused: %v", busy)
	}

	// 10 s later the ceiling is 202 (1 % of 200): two more open, then no more.
	admitted := func(now time.Time) int { // at most 100
		n := 0
		for n < 100 && openNew(now) == nil {
			n++
		}
		return n
	}
	if n := admitted(t0.Add(10 * time.Second)); n != 2 {
		t.Fatalf("10 s after shedding, %d new streams opened, want 2 (1 %% of 200)", n)
	}
	if n := admitted(t0.Add(35 * time.Second)); n != 4 {
		t.Fatalf("35 s after shedding, %d more opened, want 4 (two raises of 2)", n)
	}
	if got := adm.ceiling.current(t0.Add(35 * time.Second)); got != 206 {
		t.Fatalf("ceiling at 35 s: %d, want 206", got)
	}

	// Another shed restarts the raises from what is left.
	shedOne(t0.Add(40 * time.Second))
	if n := admitted(t0.Add(49 * time.Second)); n != 0 {
		t.Fatalf("9 s after another shed, %d opened, want none", n)
	}
	if n := admitted(t0.Add(50 * time.Second)); n != 2 {
		t.Fatalf("10 s after another shed, %d opened, want 2", n)
	}

	// Ten minutes without a shed: no ceiling at all.
	if n := admitted(t0.Add(40*time.Second + 10*time.Minute)); n != 100 {
		t.Fatal("10 min after the last shed, still held by its ceiling")
	}
	if got := adm.ceiling.current(t0.Add(40*time.Second + 10*time.Minute)); got != 0 {
		t.Fatalf("ceiling 10 min after the last shed: %d, want none", got)
	}
}

// TestSmallNodeIsNotHeldByItsShedding: under 64 streams, shedding leaves
// no ceiling that refuses anyone.
func TestSmallNodeIsNotHeldByItsShedding(t *testing.T) {
	adm := &admission{behind: func(time.Time) (bool, time.Duration) { return false, 0 }}
	reg := registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 40 {
		x, created, busy := reg.acquire(session.Session{ID: fmt.Sprint("s", i)}, adm, t0)
		if busy != nil {
			t.Fatal(busy)
		}
		if created {
			x.mu.Unlock()
		}
	}
	reg.release(reg.sessions["s39"], adm)
	adm.ceiling.shed(t0, adm.open.Load())
	for i := 39; i < 70; i++ {
		x, created, busy := reg.acquire(session.Session{ID: fmt.Sprint("s", i)}, adm, t0.Add(time.Second))
		if i < minCPUStreams && busy != nil {
			t.Fatalf("stream %d of a small node refused: %v", i+1, busy)
		}
		if i >= minCPUStreams && busy == nil {
			t.Fatalf("stream %d opened past the ceiling of %d", i+1, adm.ceiling.current(t0.Add(time.Second)))
		}
		if created {
			x.mu.Unlock()
		}
	}
}
