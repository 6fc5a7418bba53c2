package agents

import (
	"context"
	"slices"
	"testing"

	"github.com/zerorealm/zerorealm/policy"
)

// agentPolicies are what a realm or scene author writes about agents: a
// policy can single agents out (principal is Agent) and read
// context.agent.
const agentPolicies = `
@id("agents-act-when-trusted")
permit (principal is Agent, action, resource)
when { context.agent.trust.state == "trusted" && !context.agent.needs_approval };

@id("people-act")
permit (principal is Avatar, action, resource);

@id("agents-move-at-most-500-a-day-here")
forbid (principal is Agent, action == Action::"TransferAsset", resource)
when { context.agent.used.day_value + context.amount > 500 };

@id("no-sub-sub-agents-on-actuators")
forbid (principal is Agent, action == Action::"CommandActuator", resource)
when { context.agent.depth > 2 };

@id("agents-of-av-blocked-stay-out")
forbid (principal is Agent, action, resource)
when { principal.owner == Avatar::"av_blocked" };
`

func TestCedarPoliciesSeeAgents(t *testing.T) {
	set, err := policy.Parse("agents.cedar", []byte(agentPolicies))
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRealm(t)
	node := r.node(t, Config{})
	agent, sub, subsub := agentKey(t), agentKey(t), agentKey(t)
	root := issue(t, r.key, rootGrant(agent))
	a := mustAgent(t, node, root, agent)
	ctx := context.Background()

	decide := func(a *Agent, act Action, resource policy.UID) policy.Decision {
		t.Helper()
		d := evaluate(t, node, a, act)
		p := Principal(a, d.Trust)
		// context.agent as the realm gives it (CedarContext) and as Go
		// values (Context) decide alike.
		var decs [2]policy.Decision
		for i, agentCtx := range []any{d.CedarContext(), d.Context()} {
			dec, err := set.Decide(ctx, policy.Request{
				Principal: p.UID,
				Action:    policy.UID{Type: "Action", ID: act.Name},
				Resource:  resource,
				Context:   map[string]any{"agent": agentCtx, "amount": int64(act.Value)},
				Entities:  []policy.Entity{p},
			})
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			decs[i] = dec
		}
		if decs[0].Allow != decs[1].Allow || !slices.Equal(decs[0].Policies, decs[1].Policies) {
			t.Fatalf("CedarContext decides %v by %v, Context %v by %v", decs[0].Allow, decs[0].Policies, decs[1].Allow, decs[1].Policies)
		}
		return decs[0]
	}
	asset := policy.UID{Type: "Asset", ID: "ore/1"}
	if dec := decide(a, transfer(100), asset); !dec.Allow {
		t.Fatalf("a transfer of 100: %s", dec.Reason)
	}
	if err := node.Spend(ctx, a, transfer(450)); err != nil {
		t.Fatal(err)
	}
	if dec := decide(a, transfer(100), asset); dec.Allow || dec.Policies[0] != "agents-move-at-most-500-a-day-here" {
		t.Fatalf("a transfer past the scene's agent budget: allow %v by %v", dec.Allow, dec.Policies)
	}
	// The same request by a person is not touched by the agent policies.
	dec, err := set.Decide(ctx, policy.Request{
		Principal: policy.UID{Type: "Avatar", ID: testOwner}, Action: policy.UID{Type: "Action", ID: ActionTransferAsset},
		Resource: asset, Context: map[string]any{"amount": int64(100)},
	})
	if err != nil || !dec.Allow {
		t.Fatalf("the owner's own transfer: %v %s", err, dec.Reason)
	}
	// Waiting for approval is visible to policy, which does not permit it.
	if dec := decide(a, command(RiskHigh), policy.UID{Type: "Actuator", ID: conveyor.ID}); dec.Allow {
		t.Fatal("a command that needs the owner's approval was permitted")
	}
	// The principal entity carries the owner.
	bg := rootGrant(agent)
	bg.Owner = "av_blocked"
	if dec := decide(mustAgent(t, node, issue(t, r.key, bg), agent), joinFoundry, policy.UID{Type: "Scene", ID: "foundry"}); dec.Allow || dec.Policies[0] != "agents-of-av-blocked-stay-out" {
		t.Fatalf("an agent of a blocked owner: allow %v by %v", dec.Allow, dec.Policies)
	}
	// Depth: a sub-sub-agent may not command actuators here.
	d1, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	g := subGrant(subsub)
	g.Limits.CommandsPerMinute = 5
	d2, err := Derive(d1, sub, g)
	if err != nil {
		t.Fatal(err)
	}
	if dec := decide(mustAgent(t, node, d1, sub), command(RiskLow), policy.UID{Type: "Actuator", ID: conveyor.ID}); !dec.Allow {
		t.Fatalf("the sub-agent's command: %s", dec.Reason)
	}
	if dec := decide(mustAgent(t, node, d2, subsub), command(RiskLow), policy.UID{Type: "Actuator", ID: conveyor.ID}); dec.Allow || dec.Policies[0] != "no-sub-sub-agents-on-actuators" {
		t.Fatalf("the sub-sub-agent's command: allow %v by %v", dec.Allow, dec.Policies)
	}
}
