package twin

import (
	"errors"
	"strings"
	"testing"
)

// What a command demands of its commander rises with its actuator's risk,
// and an unknown risk demands everything (fail closed).
func TestRiskDemands(t *testing.T) {
	for _, tc := range []struct {
		risk             Risk
		stepUp, approval bool
	}{
		{RiskLow, false, false},
		{RiskMedium, false, false},
		{RiskHigh, true, false},
		{RiskCritical, true, true},
		{"", true, true},
		{"severe", true, true},
		{"Low", true, true},
	} {
		if got := NeedsStepUp(tc.risk); got != tc.stepUp {
			t.Errorf("NeedsStepUp(%q) = %v, want %v", tc.risk, got, tc.stepUp)
		}
		if got := NeedsApproval(tc.risk); got != tc.approval {
			t.Errorf("NeedsApproval(%q) = %v, want %v", tc.risk, got, tc.approval)
		}
	}
}

func TestRegistryRefusesUnknownRisk(t *testing.T) {
	_, err := NewRegistry([]Twin{{ID: "press-1", Actuators: []Actuator{{ID: "ram", Max: 1, MaxRate: 1, Risk: "severe"}}}})
	if !errors.Is(err, ErrInvalidTwin) || !strings.Contains(err.Error(), `unknown risk "severe"`) {
		t.Fatalf("NewRegistry with risk severe: %v; want ErrInvalidTwin naming the risk", err)
	}
}
