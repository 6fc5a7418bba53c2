package agents

import (
	"errors"
	"testing"
)

// A delegation may cap commands at low, medium or high; critical and any
// word that is not a risk are never delegable.
func TestDelegableRisks(t *testing.T) {
	for r, want := range map[Risk]bool{
		RiskLow: true, RiskMedium: true, RiskHigh: true,
		RiskCritical: false, "": false, "severe": false, "High": false,
	} {
		if got := delegable(r); got != want {
			t.Errorf("delegable(%q) = %v, want %v", r, got, want)
		}
	}
}

// A command's risk is judged against the leaf's cap on the shared order,
// and a risk that is no level is refused as malformed, never let through
// as the lowest.
func TestCommandRiskAgainstTheCap(t *testing.T) {
	r := newTestRealm(t)
	g := r.node(t, Config{})
	agent := agentKey(t)
	grant := rootGrant(agent)
	grant.Resources = append(grant.Resources, conveyor)
	grant.Limits.MaxRisk = RiskMedium
	a := mustAgent(t, g, issue(t, r.key, grant), agent)
	for _, tc := range []struct {
		risk    Risk
		want    Outcome
		why     Reason
		errKind error
	}{
		{RiskLow, Allow, "", nil},
		{RiskMedium, Allow, "", nil},
		{RiskHigh, Deny, ReasonOverLimit, ErrForbidden},
		{RiskCritical, Deny, ReasonOverLimit, ErrForbidden},
		{"severe", Deny, ReasonMalformed, ErrMalformed},
		{"", Deny, ReasonMalformed, ErrMalformed},
	} {
		g.behaviour.Forget(a.ID)
		d := evaluate(t, g, a, command(tc.risk))
		if d.Outcome != tc.want || ReasonOf(d.Err) != tc.why {
			t.Errorf("a %q command under a medium cap: %s, want %s %s", tc.risk, d, tc.want, tc.why)
		}
		if tc.errKind != nil && !errors.Is(d.Err, tc.errKind) {
			t.Errorf("a %q command: %v is not %v", tc.risk, d.Err, tc.errKind)
		}
	}
}
