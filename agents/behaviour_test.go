package agents

import (
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

const someAgent = "ag_00000000000000000000000000000001"

func TestBehaviourNewAgentIsTrusted(t *testing.T) {
	b := NewBehaviour(BehaviourConfig{}, trust.NewManualClock(t0))
	if as := b.Assess(someAgent); as.State != trust.Trusted || as.Score != 1 {
		t.Fatalf("Assess of an unknown agent = %+v", as)
	}
	var as Assessment
	for i := range 20 {
		as = b.Observe(someAgent, Event{At: t0.Add(time.Duration(i) * 10 * time.Second), Outcome: Allow})
	}
	if as.State != trust.Trusted || as.Score != 1 {
		t.Fatalf("a steady, allowed agent: %+v", as)
	}
}

func TestBehaviourOutOfScopeBurstSuspends(t *testing.T) {
	b := NewBehaviour(BehaviourConfig{}, trust.NewManualClock(t0))
	var as Assessment
	for i := range 4 {
		as = b.Observe(someAgent, Event{At: t0.Add(time.Duration(i) * time.Second), Outcome: Deny, Reason: ReasonOutOfScope})
	}
	if as.State != trust.StepUp {
		t.Fatalf("after 4 out-of-scope attempts: %+v, want step-up", as)
	}
	as = b.Observe(someAgent, Event{At: t0.Add(4 * time.Second), Outcome: Deny, Reason: ReasonOutOfScope})
	if as.State != trust.Suspended {
		t.Fatalf("after 5 within a minute: %+v, want suspended", as)
	}
	// Suspension does not decay away: the owner reinstates.
	b.clock.(*trust.ManualClock).Advance(24 * time.Hour)
	if as := b.Assess(someAgent); as.State != trust.Suspended {
		t.Fatalf("a day later: %+v", as)
	}
}

func TestBehaviourSlowProbingStepsUpThenRecovers(t *testing.T) {
	clock := trust.NewManualClock(t0)
	b := NewBehaviour(BehaviourConfig{}, clock)
	var as Assessment
	// Out-of-scope attempts spread out: never a burst, but they add up.
	for i := range 4 {
		as = b.Observe(someAgent, Event{At: t0.Add(time.Duration(i) * 2 * time.Minute), Outcome: Deny, Reason: ReasonOutOfScope})
	}
	if as.State != trust.StepUp {
		t.Fatalf("after four spread attempts: %+v, want step-up", as)
	}
	clock.Set(t0.Add(30 * time.Minute))
	if as := b.Assess(someAgent); as.State != trust.Trusted {
		t.Fatalf("half an hour of good behaviour later: %+v, want trusted", as)
	}
}

func TestBehaviourLimitsAloneNeverSuspend(t *testing.T) {
	b := NewBehaviour(BehaviourConfig{}, trust.NewManualClock(t0))
	var as Assessment
	for i := range 50 {
		as = b.Observe(someAgent, Event{At: t0.Add(time.Duration(i) * 5 * time.Second), Outcome: Deny, Reason: ReasonOverLimit})
	}
	if as.State != trust.Trusted || as.Score < 0.7-1e-9 {
		t.Fatalf("an agent that keeps meeting its limit: %+v, want trusted at 0.7", as)
	}
}

func TestBehaviourSpendingVelocity(t *testing.T) {
	b := NewBehaviour(BehaviourConfig{}, trust.NewManualClock(t0))
	var as Assessment
	// 95 % of the day's budget within ten minutes.
	for i := range 19 {
		as = b.Observe(someAgent, Event{At: t0.Add(time.Duration(i) * 30 * time.Second), Outcome: Allow, Value: 50, DailyLimit: 1000})
	}
	if as.Score > 0.8 || len(as.Factors()) != 1 || !strings.HasPrefix(as.Factors()[0], "spending 9") || !strings.Contains(as.Factors()[0], "% of a day's budget within the hour -0.") {
		t.Fatalf("spending most of a day's budget in minutes: %+v %q", as, as.Factors())
	}
}

func TestBehaviourRateSpikeAgainstOwnBaseline(t *testing.T) {
	b := NewBehaviour(BehaviourConfig{}, trust.NewManualClock(t0))
	at := t0
	// An hour at 5 actions a minute sets the agent's baseline.
	for m := range 60 {
		for i := range 5 {
			at = t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second)
			b.Observe(someAgent, Event{At: at, Outcome: Allow})
		}
	}
	if as := b.Assess(someAgent); len(as.Factors()) != 0 {
		t.Fatalf("a steady agent: %+v", as)
	}
	var as Assessment
	for i := range 40 {
		as = b.Observe(someAgent, Event{At: at.Add(time.Minute + time.Duration(i)*time.Second), Outcome: Allow})
	}
	if as.Score >= 1 {
		t.Fatalf("40 actions in a minute against a baseline of 5: %+v", as)
	}
}

func TestBehaviourEdges(t *testing.T) {
	b := NewBehaviour(BehaviourConfig{}, trust.NewManualClock(t0))
	var as Assessment
	for i := range 10 {
		as = b.Observe(someAgent, Event{At: t0.Add(time.Duration(i) * 10 * time.Second), Outcome: Allow, Edge: true})
	}
	if as.Score > 1-edgePenalty+1e-9 {
		t.Fatalf("every action at the envelope's edge: %+v", as)
	}
}

func TestBehaviourIsBounded(t *testing.T) {
	b := NewBehaviour(BehaviourConfig{MaxAgents: 10}, trust.NewManualClock(t0))
	for i := range 100 {
		b.Observe(AgentID([]byte{byte(i)}), Event{At: t0.Add(time.Duration(i) * time.Second), Outcome: Allow})
	}
	if n := len(b.agents); n > 10 {
		t.Fatalf("%d agents followed, at most 10", n)
	}
}
