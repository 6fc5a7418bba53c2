package realm

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"

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
// approval: it is not allowed now; a part that queues it for the owner
// (wire_approvals.go) tells it by this reason.
const agentReasonApproval = "needs-owner-approval: the owner must approve this action with a passkey step-up bound to it"

// decideAgent decides act for the agent p within the scene sc and queues
// the answer for the audit log with the agent's whole chain (which person,
// through which agents). An allowed action's use of the delegation's
// limits is spent before it returns. A non-nil error is a failure to
// decide (the store, the revocation list unknown): the action must not
// run, and it was not audited as a decision.
func (r *Realm) decideAgent(ctx context.Context, sc *scenes.Scene, p edge.Principal, act agents.Action, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, error) {
	d, ev, err := r.evaluateAgent(ctx, sc, p, act, resource, extra, entities...)
	if err != nil {
		return policy.Decision{}, err
	}
	r.auditAsync(ctx, ev)
	return d, nil
}

// evaluateAgent returns the decision on an agent's action with the audit
// event that records it.
func (r *Realm) evaluateAgent(ctx context.Context, sc *scenes.Scene, p edge.Principal, act agents.Action, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, audit.Event, error) {
	a := p.Agent
	ad, err := r.agents.Evaluate(ctx, a, act)
	if err != nil {
		// Revoked or suspended since the request was authenticated, or
		// the revocation list unknown: the request ends here.
		return policy.Decision{}, audit.Event{}, edge.AgentError(err)
	}
	pctx := map[string]any{
		// The agent's own behaviour is its trust; what a person's trust
		// adds (a live biometric, a passkey's age, an attested device) an
		// agent never has, so a policy that asks for them refuses it.
		scenes.ContextTrust: trust.Assessment{State: ad.Trust.State, Score: ad.Trust.Score, PasskeyAge: -1}.Context(),
		scenes.ContextAuthenticator: map[string]any{
			scenes.AuthenticatorAttested: false, scenes.AuthenticatorFormat: "",
			scenes.AuthenticatorAAGUID: "", scenes.AuthenticatorSynced: false,
		},
		contextAgent: ad.Context,
	}
	for k, v := range extra {
		pctx[k] = v
	}
	ev := audit.Event{
		Actor: a.ID, Action: act.Name, Resource: resource.String(), Outcome: audit.Allow,
		Signals: map[string]any{"chain": a.Chain.Path(), "owner": a.Owner(), contextAgent: ad.Context},
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
	principal := agents.Principal(a, ad.Trust)
	principal.Attrs["chain"] = a.Chain.Agents()
	principal.Attrs["delegations"] = a.Chain.IDs()
	req := policy.Request{
		Principal: principal.UID,
		Action:    scenes.ActionUID(act.Name),
		Resource:  resource,
		Context:   pctx,
		Entities:  append(append(sc.Entities(), principal, avatarEntity(p)), entities...),
	}
	d, err := sc.Policies.Decide(ctx, req)
	if err != nil {
		d.Allow = false
		if d.Reason == "" {
			d.Reason = "the request could not be evaluated: " + err.Error()
		}
	}
	ev.Policies = d.Policies
	if !d.Allow {
		return deny(d.Reason)
	}
	if err := r.agents.Spend(ctx, a, act); err != nil {
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

// agentSceneAccess is GET /v1/scenes/{id}/access for an agent: what its
// delegation and the scene's policies allow it now, each a real, audited
// decision with its reason.
func (r *Realm) agentSceneAccess(w http.ResponseWriter, req *http.Request, p edge.Principal, sc *scenes.Scene) {
	out := []decisionView{}
	join := scenes.SceneUID(sc.ID)
	scene := agents.Resource{Kind: agents.KindScene, ID: sc.ID}
	ask := func(action string, resource policy.UID, extra map[string]any) bool {
		// Only what the delegation grants is decided: asking about the
		// rest is not an attempt, so it must not count against the agent
		// as probing would (see docs/agents.md, Trust).
		if !grantsScene(p.Agent.Chain.Leaf(), action, sc.ID) {
			out = append(out, decisionView{Action: action, Resource: resource.String(), Policies: []string{},
				Reason: "agent out-of-scope: delegation " + p.Agent.Chain.Leaf().ID + " does not grant " + action + " in scene " + sc.ID})
			return true
		}
		d, err := r.decideAgent(req.Context(), sc, p, agents.Action{Name: action, Resource: scene}, resource, extra)
		if err != nil {
			r.edge.WriteAgentError(w, req, err)
			return false
		}
		out = append(out, viewDecision(action, resource, d))
		return true
	}
	if !ask(scenes.ActionJoinScene, join, nil) {
		return
	}
	for _, z := range sc.Zones {
		// Asked from outside the zone; a delegation grants a zone through
		// its scene.
		if !ask(scenes.ActionEnterZone, scenes.ZoneUID(z.ID), map[string]any{scenes.ContextAvatarZone: ""}) {
			return
		}
	}
	as := r.agents.Assess(p.Agent.ID)
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"scene": sc.ID, "agent": p.Agent.ID, "chain": p.Agent.Chain.Path(),
		"trust": agentTrustView{State: string(as.State), Score: as.Score}, "decisions": out,
	})
}

// sceneOr404 finds the scene of the request's {id}.
func (r *Realm) sceneOr404(w http.ResponseWriter, req *http.Request) (*scenes.Scene, bool) {
	sc, ok := r.catalog.Scene(req.PathValue("id"))
	if !ok {
		r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no scene " + strconv.Quote(req.PathValue("id"))})
	}
	return sc, ok
}

// grantsScene reports whether a delegation block grants action in scene.
func grantsScene(g *agents.Grant, action, scene string) bool {
	return slices.Contains(g.Actions, action) && slices.Contains(g.Resources, agents.Resource{Kind: agents.KindScene, ID: scene})
}
