package trust_test

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

// t0 is the start of every test's manual clock.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

const halfLife = trust.DefaultPasskeyHalfLife

func newTracker(t testing.TB, cfg trust.Config) (*trust.Tracker, *trust.ManualClock) {
	t.Helper()
	clock := trust.NewManualClock(t0)
	cfg.Clock = clock
	e, err := trust.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return e.NewTracker(), clock
}

func observe(t testing.TB, tr *trust.Tracker, s trust.Signal) trust.Assessment {
	t.Helper()
	a, err := tr.Observe(s)
	if err != nil {
		t.Fatalf("Observe(%+v): %v", s, err)
	}
	return a
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

func factorNames(a trust.Assessment) []string {
	var names []string
	for _, f := range a.Factors() {
		names = append(names, f.Name)
	}
	return names
}
