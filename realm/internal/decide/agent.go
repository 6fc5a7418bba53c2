package decide

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// An agent's action is decided twice: by its delegation (agents.Guard:
// scope, limits, its behavioural trust) and then by the same Cedar
// policies as a person's, with the agent as the principal.

// contextAgent is the Cedar context key of agents.AgentContext.
const contextAgent = "agent"

// agentReasonApproval is the answer to an action that needs its owner's
// approval: it is not allowed now; DecideAgentAndWait tells a part that
// queues it for the owner by this reason.
const agentReasonApproval = "needs-owner-approval: the owner must approve this action with a passkey step-up bound to it"

// agentAuthenticator is context.authenticator of every agent action: an
// agent holds no passkey, so none is attested. It is the same on every
// request, so it is converted to Cedar once (policy.Value); should the
// conversion fail, the map is converted per request and refused there.
var agentAuthenticator = convertOnce(authenticatorRecord(false, "", "", false))

// agentTrustContexts are context.trust of agents' actions by trust state
// and score (as the Cedar decimal it becomes), converted to Cedar once.
// An agent's context.trust is its behavioural trust alone (what a
// person's adds, a live biometric, a passkey's age, an attested device,
// an agent never has), so there are as many as there are distinct
// trusts, and a busy agent's stays the same from one action to the next.
var agentTrustContexts = newConverted[agentTrustKey, any](maxAgentTrustContexts)

type agentTrustKey struct {
	state trust.State
	units int64 // the score as Cedar holds it (policy.DecimalUnits)
}

// maxAgentTrustContexts bounds agentTrustContexts.
const maxAgentTrustContexts = 1024

// agentTrustContext is an agent's context.trust at state and score.
func agentTrustContext(state trust.State, score float64) any {
	units, same, ok := policy.DecimalUnits(score)
	if !ok {
		// No Cedar value: converted per request, and refused there.
		return trust.Assessment{State: state, Score: score, PasskeyAge: -1}.Context()
	}
	k := agentTrustKey{state, units}
	if v, ok := agentTrustContexts.get(k); ok {
		return v
	}
	// Made from the score Cedar holds, so that whichever score of the
	// same decimal came first, the value is the same.
	m := trust.Assessment{State: state, Score: same, PasskeyAge: -1}.Context()
	var v any = m
	if pv, err := policy.NewValue(m); err == nil {
		v = pv
	} // else converted per request, and refused there
	agentTrustContexts.put(k, v)
	return v
}

// errNoGuard is the failure to decide for an agent before the guard is
// bound: the action must not run.
var errNoGuard = errors.New("decide: agents are not served yet")

// DecideAgent decides act for the agent p within the scene sc and queues
// the answer for the audit log with the agent's whole chain (which person,
// through which agents). An allowed action's use of the delegation's
// limits is spent before it returns. A non-nil error is a failure to
// decide (the store, the revocation list unknown): the action must not
// run, and it was not audited as a decision.
func (s *Service) DecideAgent(ctx context.Context, sc *scenes.Scene, p edge.Principal, act agents.Action, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, error) {
	d, ev, err := s.evaluateAgent(ctx, sc, p, act, resource, extra, entities...)
	if err != nil {
		return policy.Decision{}, err
	}
	s.RecordQueued(ctx, ev)
	return d, nil
}

// DecideEither decides action on resource for p, a person (Decide) or an
// agent (DecideAgent, its delegation naming the resource by the same kind
// and id); an agent's action that cannot be decided is a deny with the
// reason, so the caller, which only reads the answer, fails closed.
func (s *Service) DecideEither(ctx context.Context, sc *scenes.Scene, p edge.Principal, as trust.Assessment, action string, resource policy.UID, extra map[string]any) policy.Decision {
	if p.Agent == nil {
		return s.Decide(ctx, sc, p, as, action, resource, extra)
	}
	act := agents.Action{Name: action, Resource: agents.Resource{Kind: resource.Type, ID: resource.ID}}
	if resource.Type == scenes.TypeZone {
		// A delegation names scenes, not their zones: entering a zone is
		// asked with the zone's scene, and Cedar sees the zone.
		act.Resource = agents.Resource{Kind: agents.KindScene, ID: sc.ID}
	}
	d, err := s.DecideAgent(ctx, sc, p, act, resource, extra)
	if err != nil {
		return policy.Decision{Reason: "the agent's action could not be decided: " + err.Error()}
	}
	return d
}

// evaluateAgent returns the decision on an agent's action with the audit
// event that records it.
func (s *Service) evaluateAgent(ctx context.Context, sc *scenes.Scene, p edge.Principal, act agents.Action, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, audit.Event, error) {
	if s.agents == nil {
		return policy.Decision{}, audit.Event{}, errNoGuard
	}
	a := p.Agent
	ad, err := s.agents.Evaluate(ctx, a, act)
	if err != nil {
		// Revoked or suspended since the request was authenticated, or
		// the revocation list unknown: the request ends here.
		return policy.Decision{}, audit.Event{}, edge.AgentError(err)
	}
	pctx := map[string]any{
		// The agent's own behaviour is its trust; what a person's trust
		// adds (a live biometric, a passkey's age, an attested device) an
		// agent never has, so a policy that asks for them refuses it.
		scenes.ContextTrust:         agentTrustContext(ad.Trust.State, ad.Trust.Score),
		scenes.ContextAuthenticator: agentAuthenticator,
		contextAgent:                ad.CedarContext(),
	}
	for k, v := range extra {
		pctx[k] = v
	}
	ev := audit.Event{
		Actor: a.ID, Action: act.Name, Resource: resource.String(), Outcome: audit.Allow,
		Signals: map[string]any{"chain": a.Chain.Path(), "owner": a.Owner(), contextAgent: ad.AuditContext()},
	}
	deny := func(reason string) (policy.Decision, audit.Event, error) {
		ev.Outcome, ev.Reasons = audit.Deny, []string{reason}
		return policy.Decision{Allow: false, Reason: reason, Policies: ev.Policies}, ev, nil
	}
	switch ad.Outcome {
	case agents.Deny:
		return deny("agent " + string(agents.ReasonOf(ad.Err)) + ": " + denyDetailOf(ad.Err))
	case agents.Approve:
		return deny(agentReasonApproval)
	}
	principal := agents.Principal(a, ad.Trust) // converted once per chain and trust: not to be changed
	d := decidePolicies(ctx, sc, policy.Request{
		Principal: principal.UID,
		Action:    scenes.ActionUID(act.Name),
		Resource:  resource,
		Context:   pctx,
		Entities:  append(append(sc.Entities(), principal, avatarEntity(p)), entities...),
	})
	ev.Policies = d.Policies
	if !d.Allow {
		return deny(d.Reason)
	}
	if err := s.agents.Spend(ctx, a, act); err != nil {
		if agents.ReasonOf(err) == "" {
			return policy.Decision{}, audit.Event{}, fmt.Errorf("spend the agent's limits: %w", err)
		}
		return deny("agent " + string(agents.ReasonOf(err)) + ": " + denyDetailOf(err))
	}
	return d, ev, nil
}

func denyDetailOf(err error) string {
	if d, ok := err.(*agents.DenyError); ok {
		return d.Detail
	}
	return err.Error()
}

// GrantsScene reports whether a delegation block grants action in scene.
func GrantsScene(g *agents.Grant, action, scene string) bool {
	return slices.Contains(g.Actions, action) && slices.Contains(g.Resources, agents.Resource{Kind: agents.KindScene, ID: scene})
}
