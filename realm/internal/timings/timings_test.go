package timings

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// series counts the series of one metric in reg.
func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

func TestEachEventIsObservedUnderItsLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := New(reg)
	d.Ceremony("sign-in", "ok", 3*time.Millisecond)
	d.Decision("JoinScene", true, 40*time.Microsecond)
	d.Decision("JoinScene", false, 40*time.Microsecond)
	d.TwinCommand("done", 2*time.Millisecond)
	d.Transfer("transfer", "receipt", 4*time.Millisecond)
	for name, want := range map[string]int{
		"zerorealm_ceremony_finish_duration_seconds": 1,
		"zerorealm_policy_decision_duration_seconds": 2,
		"zerorealm_twin_command_duration_seconds":    1,
		"zerorealm_transfer_duration_seconds":        1,
	} {
		if n := series(t, reg, name); n != want {
			t.Errorf("%s: %d series, want %d", name, n, want)
		}
	}
}

func TestDecisionActionsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := New(reg)
	for i := range maxActions + 10 {
		d.Decision(fmt.Sprintf("Action%d", i), true, time.Microsecond)
	}
	if n := series(t, reg, "zerorealm_policy_decision_duration_seconds"); n != maxActions+1 {
		t.Fatalf("%d series, want %d actions and other", n, maxActions+1)
	}
}
