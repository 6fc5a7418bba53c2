package agents

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/zerorealm/zerorealm/trust"
)

// The audit's context.agent is the JSON of Decision.Context, byte for
// byte, whatever the action, the chain and the trust.
func TestAuditContextEncodesAsContext(t *testing.T) {
	r := newTestRealm(t)
	g := r.node(t, Config{})
	agent, sub := agentKey(t), agentKey(t)
	root := issue(t, r.key, rootGrant(agent))
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	parent, child := mustAgent(t, g, root, agent), mustAgent(t, g, derived, sub)
	same := func(name string, d Decision) {
		t.Helper()
		want, err := json.Marshal(d.Context)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(d.AuditContext())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	same("a transfer", evaluate(t, g, parent, transfer(100)))
	same("a transfer to approve", evaluate(t, g, parent, transfer(500)))
	same("an approved transfer", evaluate(t, g, parent, Action{Name: ActionTransferAsset, Resource: oreCollection, Value: 500, Approved: true}))
	same("a command", evaluate(t, g, parent, command(RiskLow)))
	same("joining", evaluate(t, g, parent, joinFoundry))
	same("out of scope", evaluate(t, g, child, joinFoundry))
	same("a sub-agent's command", evaluate(t, g, child, command(RiskMedium)))

	for _, score := range []float64{0, 1, 0.1234567890123, 1e-7, 2.5e-9, 0.5, -0.25, 1e21, 3e-6} {
		for _, state := range []trust.State{trust.StepUp, trust.Trusted, `odd <"state"> & é`} {
			a := auditContext{chain: derived, trust: Assessment{State: state, Score: score}, used: "minute_commands", usedValue: 1 << 63, needsApproval: true}
			got, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := json.Marshal(a.asMap()); !bytes.Equal(got, want) {
				t.Fatalf("score %g, state %q:\n got %s\nwant %s", score, state, got, want)
			}
		}
	}
	if got := (Decision{Context: map[string]any{"id": "x"}}).AuditContext(); got.(map[string]any)["id"] != "x" {
		t.Fatalf("a Decision the Guard did not make: %v", got)
	}
}
