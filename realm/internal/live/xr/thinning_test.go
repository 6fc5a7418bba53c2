package xr

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/cpuload"
)

// TestThinnerDecides: the node thins while its spare CPU is under the
// line or it is behind, and stops only when it would stay over the line
// with the CPU thinning saves spent again.
func TestThinnerDecides(t *testing.T) {
	view := func(spare float64) *cpuView { return &cpuView{spare: spare} }
	steps := []struct {
		name    string
		below   float64
		v       *cpuView
		process float64
		open    int64
		behind  bool
		want    bool
	}{
		{"never thins with no line", 0, view(0), 2, 1000, true, false},
		{"unmeasured", 0.3, nil, 0, 1000, false, false},
		{"behind, unmeasured", 0.3, nil, 0, 1000, true, true},
		{"unmeasured again, not behind", 0.3, nil, 0, 1000, false, false},
		{"too few streams to fill the machine", 0.3, view(0.05), 1.5, minCPUStreams - 1, false, false},
		{"spare over the line", 0.3, view(0.35), 1.5, 1000, false, false},
		{"spare under the line", 0.3, view(0.25), 1.5, 1000, false, true},
		{"over the line, not by what thinning saves", 0.3, view(0.5), 1.5, 1000, false, true},
		{"over the line by what thinning saves", 0.3, view(0.61), 1.5, 1000, false, false},
		{"just over the line, not thinning", 0.3, view(0.31), 1.5, 1000, false, false},
	}
	thinning := false
	for _, st := range steps {
		th := thinner{below: st.below}
		got := th.decide(thinning, st.v, st.process, st.open, st.behind)
		if got != st.want {
			t.Errorf("%s: thins %v, want %v", st.name, got, st.want)
		}
		thinning = got
	}
}

func TestThinBelowProblems(t *testing.T) {
	for _, ok := range []float64{0, 0.15, 0.99} {
		if p := ThinBelowProblems(ok); p != nil {
			t.Errorf("ThinBelow %v: %q", ok, p)
		}
	}
	for _, bad := range []float64{-0.1, 1, 1.5} {
		if p := ThinBelowProblems(bad); len(p) != 1 || !strings.Contains(p[0], "want a share of the cores") {
			t.Errorf("ThinBelow %v: %q, want one problem", bad, p)
		}
	}
}

// TestServiceThinsWhenShortOfCPU: the node's CPU measurement turns the
// engine's thinning on when its spare CPU falls under the line, and off
// once it has the line and what thinning saves to spare, saying so once
// each way.
func TestServiceThinsWhenShortOfCPU(t *testing.T) {
	engine, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var process, idle time.Duration
	idleStep, processStep := 100*time.Millisecond, 1500*time.Millisecond
	meter := cpuload.NewMeter(0, func() (cpuload.Reading, error) {
		mu.Lock()
		defer mu.Unlock()
		process += processStep
		idle += idleStep
		return cpuload.Reading{Process: process, MachineIdle: idle, MachineKnown: true}, nil
	})
	logs := &logRecords{}
	s := &Service{log: slog.New(logs), engine: engine}
	s.admit.behind = func(time.Time) (bool, time.Duration) { return false, 0 }
	s.admit.cpu.cores = 2
	s.thin.below = 0.3
	s.admit.open.Store(100)
	m := cpuMeasure{s: s, meter: meter}
	t0 := time.Unix(1000, 0)
	m.take(t0)
	if engine.Thinning() {
		t.Fatal("the engine thins before the node's CPU is measured")
	}
	m.take(t0.Add(time.Second))
	if !engine.Thinning() {
		t.Fatal("a node with 0.1 cores to spare, under its line of 0.3, does not thin")
	}
	// 0.5 cores to spare (the 2 cores less the 1.5 it uses; the machine
	// idles 0.7): over the line, but not by the 0.3 cores (a fifth of the
	// 1.5 it uses) that thinning is taken to save.
	mu.Lock()
	idleStep = 700 * time.Millisecond
	mu.Unlock()
	for i := 2; i <= 2+2*cpuSpareSteps; i++ {
		m.take(t0.Add(time.Duration(i) * time.Second))
	}
	if !engine.Thinning() {
		t.Fatal("a node that would be short again once it stopped thinning stopped")
	}
	// A core to spare, of which stopping would take 0.2.
	mu.Lock()
	idleStep, processStep = time.Second, time.Second
	mu.Unlock()
	for i := 3 + 2*cpuSpareSteps; i <= 3+4*cpuSpareSteps; i++ {
		m.take(t0.Add(time.Duration(i) * time.Second))
	}
	if engine.Thinning() {
		t.Fatal("a node with a core to spare still thins")
	}
	got := logs.messages()
	want := []string{"WARN node is short of CPU: it judges the XR streams it trusts and is sure of every other window", "INFO node has CPU to spare again"}
	if len(got) != len(want) {
		t.Fatalf("logged %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("logged %q, want %q", got, want)
		}
	}
}
