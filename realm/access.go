package realm

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// avatarEntity is the Cedar principal for a signed-in avatar.
func avatarEntity(p edge.Principal) policy.Entity {
	roles := make([]any, len(p.Avatar.Roles))
	for i, r := range p.Avatar.Roles {
		roles[i] = r
	}
	return policy.Entity{
		UID:   policy.UID{Type: scenes.TypeAvatar, ID: p.Avatar.ID},
		Attrs: map[string]any{"roles": roles, "name": p.Avatar.Name},
	}
}

// policyContext is what every Cedar request of a session carries: its
// trust and the passkey it signed in with.
func policyContext(p edge.Principal, a trust.Assessment) map[string]any {
	authn := map[string]any{
		scenes.AuthenticatorAttested: false,
		scenes.AuthenticatorFormat:   "",
		scenes.AuthenticatorAAGUID:   "",
		scenes.AuthenticatorSynced:   false,
	}
	if id, err := base64.RawURLEncoding.DecodeString(p.Session.Credential); err == nil {
		if c := p.Avatar.Credential(id); c != nil {
			authn[scenes.AuthenticatorAttested] = c.Attested
			authn[scenes.AuthenticatorFormat] = c.AttestationFormat
			authn[scenes.AuthenticatorAAGUID] = hex.EncodeToString(c.AAGUID)
			authn[scenes.AuthenticatorSynced] = c.BackupEligible
		}
	}
	return map[string]any{scenes.ContextTrust: a.Context(), scenes.ContextAuthenticator: authn}
}

// decide asks the scene's policies and queues the answer for the audit log
// with the policies and signals that produced it, without waiting for it
// to be stored (see auditAsync). An evaluation error is a deny. entities
// are added to the scene's own, e.g. the asset a transfer moves.
func (r *Realm) decide(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any, entities ...policy.Entity) policy.Decision {
	d, ev := r.evaluate(ctx, sc, p, a, action, resource, extra, entities...)
	r.auditAsync(ctx, ev)
	return d
}

// decideAndWait is decide for a decision whose effect must not outrun its
// audit record: it returns only once the answer is stored, and a non-nil
// error (with the decision, which the caller must then not act on) when it
// could not be.
func (r *Realm) decideAndWait(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, error) {
	d, ev := r.evaluate(ctx, sc, p, a, action, resource, extra, entities...)
	return d, r.auditAndWait(ctx, ev)
}

// evaluate asks the scene's policies and returns the answer with the audit
// event that records it; the caller records the event.
func (r *Realm) evaluate(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, audit.Event) {
	pctx := policyContext(p, a)
	for k, v := range extra {
		pctx[k] = v
	}
	req := policy.Request{
		Principal: policy.UID{Type: scenes.TypeAvatar, ID: p.Avatar.ID},
		Action:    scenes.ActionUID(action),
		Resource:  resource,
		Context:   pctx,
		Entities:  append(append(sc.Entities(), avatarEntity(p)), entities...),
	}
	d, err := sc.Policies.Decide(ctx, req)
	if err != nil {
		d.Allow = false
		if d.Reason == "" {
			d.Reason = "the request could not be evaluated: " + err.Error()
		}
	}
	ev := audit.Event{
		Actor: p.Avatar.ID, Action: action, Resource: resource.String(),
		Outcome: audit.Allow, Policies: d.Policies, Signals: pctx,
	}
	if !d.Allow {
		ev.Outcome, ev.Reasons = audit.Deny, []string{d.Reason}
	}
	return d, ev
}

// decisionView is a decision as answers show it.
type decisionView = policy.View

func viewDecision(action string, resource policy.UID, d policy.Decision) decisionView {
	return policy.ViewOf(action, resource, d)
}

// handleSceneAccess tells the signed-in avatar what the scene's policies
// allow it now, with the reason for every deny: joining the scene, and
// entering each of its zones. Each answer is a real, audited decision.
func (r *Realm) handleSceneAccess(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	sc, ok := r.sceneOr404(w, req)
	if !ok {
		return
	}
	if p.IsAgent() {
		r.agentSceneAccess(w, req, p, sc)
		return
	}
	a := r.trust.Assess(req.Context(), p.Session)
	out := []decisionView{}
	join := scenes.SceneUID(sc.ID)
	out = append(out, viewDecision(scenes.ActionJoinScene, join, r.decide(req.Context(), sc, p, a, scenes.ActionJoinScene, join, nil)))
	for _, z := range sc.Zones {
		zone := scenes.ZoneUID(z.ID)
		// Asked from outside the zone: the question is whether the avatar
		// may step in.
		d := r.decide(req.Context(), sc, p, a, scenes.ActionEnterZone, zone, map[string]any{scenes.ContextAvatarZone: ""})
		out = append(out, viewDecision(scenes.ActionEnterZone, zone, d))
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"scene": sc.ID, "trust": trustView(a), "decisions": out})
}

// handleSceneStanding tells the signed-in avatar where the realm sees it
// in the scene: the zone its presence was admitted into, which is the
// zone its twin commands are decided with. A console shows it; it decides
// nothing, so it is not audited.
func (r *Realm) handleSceneStanding(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	sc, ok := r.catalog.Scene(req.PathValue("id"))
	if !ok {
		r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no scene " + strconv.Quote(req.PathValue("id"))})
		return
	}
	st := r.presence.whereIs(sc.ID, p.Avatar.ID, p.Session.ID)
	edge.WriteJSON(w, http.StatusOK, map[string]any{"scene": sc.ID, "present": st.present, "zone": st.zone, "where": st.String()})
}
