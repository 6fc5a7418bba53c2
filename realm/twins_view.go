package realm

import (
	"context"
	"net/http"

	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
)

// Reading a twin (its actuators' envelopes, its gateway's key, its live
// state, and the commands and approvals about it) is a decision of its
// scene's policies (ViewTwin), taken and audited like any other: a twin is
// for the people who run it, not for whoever can reach the realm.

// twinViewer decides, once per twin, whether one avatar may view it, and
// remembers the answers for the rest of one request or feed connection.
type twinViewer struct {
	r         *Realm
	p         edge.Principal
	trust     trust.Assessment
	decided   map[string]policy.Decision
	firstDeny *policy.Decision
}

func (r *Realm) twinViewer(ctx context.Context, p edge.Principal) *twinViewer {
	return &twinViewer{r: r, p: p, trust: r.trust.assess(ctx, p.Session), decided: map[string]policy.Decision{}}
}

// may decides ViewTwin for twinID (audited the first time it is asked).
// A twin the realm does not place in a scene is denied: fail closed.
func (v *twinViewer) may(ctx context.Context, twinID string) policy.Decision {
	if d, ok := v.decided[twinID]; ok {
		return d
	}
	var d policy.Decision
	if sc, ok := v.r.twins.sceneOf[twinID]; ok {
		d = v.r.decide(ctx, sc, v.p, v.trust, scenes.ActionViewTwin, scenes.TwinUID(twinID), nil)
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
func (v *twinViewer) visible(ctx context.Context) []twin.Twin {
	var out []twin.Twin
	for _, t := range v.r.twins.reg.Twins() {
		if v.may(ctx, t.ID).Allow {
			out = append(out, t)
		}
	}
	return out
}

// refusal is the answer when the avatar may view none of the twins it
// asked about.
func (v *twinViewer) refusal() error {
	reason := "no policy lets you view twins"
	if v.firstDeny != nil && v.firstDeny.Reason != "" {
		reason = v.firstDeny.Reason
	}
	return twinViewDenied(reason)
}

func twinViewDenied(reason string) error {
	return &edge.Error{Status: http.StatusForbidden, Detail: "policy: " + reason + " (ViewTwin: the twins' operators and supervisors may view them)"}
}

// consoleTwin is the twin a console feed message is about, "" for none.
func (m consoleMessage) twin() string {
	switch {
	case m.Twin != "":
		return m.Twin
	case m.Outcome != nil:
		return m.Outcome.Command.Twin
	case m.Approval != nil:
		return m.Approval.Command.Twin
	}
	return ""
}
