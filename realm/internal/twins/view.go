package twins

import (
	"context"
	"net/http"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
)

// Reading a twin (its actuators' envelopes, its gateway's key, its live
// state, and the commands and approvals about it) is a decision of its
// scene's policies (ViewTwin), taken and audited like any other: a twin is
// for the people who run it, not for whoever can reach the realm.

// viewer decides, once per twin, whether one avatar may view it, and
// remembers the answers for the rest of one request or feed connection.
type viewer struct {
	a         *API
	op        command.Operator
	trust     trust.Assessment
	decided   map[string]policy.Decision
	firstDeny *policy.Decision
}

func (a *API) viewer(ctx context.Context, p edge.Principal) *viewer {
	v := &viewer{a: a, op: operatorOf(p), decided: map[string]policy.Decision{}}
	// An agent's trust is its own behaviour, which its decision reads.
	if !p.IsAgent() {
		v.trust = a.deps.Trust.Assess(ctx, p.Session)
	}
	return v
}

// may decides ViewTwin for twinID (audited the first time it is asked).
// A twin the realm does not place in a scene is denied: fail closed.
func (v *viewer) may(ctx context.Context, twinID string) policy.Decision {
	if d, ok := v.decided[twinID]; ok {
		return d
	}
	var d policy.Decision
	if sc, ok := v.a.svc.SceneOf(twinID); ok {
		d = v.a.deps.Decider.Decide(ctx, sc, v.op, v.trust, scenes.ActionViewTwin, scenes.TwinUID(twinID), nil)
	} else {
		d = policy.Decision{Reason: "the twin belongs to no scene this realm serves"}
	}
	v.decided[twinID] = d
	if !d.Allow && v.firstDeny == nil {
		v.firstDeny = &d
	}
	return d
}

// visible is the twins the avatar may view, each decided.
func (v *viewer) visible(ctx context.Context) []twin.Twin {
	var out []twin.Twin
	for _, t := range v.a.svc.Registry().Twins() {
		// An agent is asked only about the twins its delegation names:
		// listing is not an attempt on the rest.
		if v.op.Agent != nil && !v.op.Agent.Chain.Leaf().Grants(agents.Action{Name: agents.ActionViewTwin, Resource: agents.Resource{Kind: agents.KindTwin, ID: t.ID}}) {
			continue
		}
		if v.may(ctx, t.ID).Allow {
			out = append(out, t)
		}
	}
	return out
}

// refusal is the answer when the avatar may view none of the twins it
// asked about.
func (v *viewer) refusal() error {
	reason := "no policy lets you view twins"
	if v.firstDeny != nil && v.firstDeny.Reason != "" {
		reason = v.firstDeny.Reason
	}
	return viewDenied(reason)
}

func viewDenied(reason string) error {
	return &edge.Error{Status: http.StatusForbidden, Detail: "policy: " + reason + " (ViewTwin: the twins' operators and supervisors may view them)"}
}
