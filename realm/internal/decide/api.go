package decide

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// Scenes finds a scene by its id (scenes.Catalog).
type Scenes interface {
	Scene(id string) (*scenes.Scene, bool)
}

// TrustReader is a session's trust now.
type TrustReader interface {
	Assess(ctx context.Context, sess session.Session) trust.Assessment
}

// Presence is where the live edge sees an avatar's session in a scene:
// whether it is present, the zone its presence was admitted into, and a
// description for people.
type Presence interface {
	Standing(sceneID, avatarID, sessionID string) (present bool, zone, where string)
}

// APIDeps is what the scene access routes read; the composition root
// binds it once the catalog, trust and the live edge exist.
type APIDeps struct {
	Scenes   Scenes
	Trust    TrustReader
	Presence Presence
	// TrustView is a session's trust as answers show it.
	TrustView func(trust.Assessment) map[string]any
}

// API serves what a principal may do in a scene now, and where the realm
// sees it there.
type API struct {
	edge      *edge.Edge
	decisions *Service
	// d is bound once during start-up, before the realm reports ready;
	// handlers read it only behind the edge's ready check.
	d *APIDeps
}

// NewAPI returns the API to register before start-up.
func NewAPI(e *edge.Edge, decisions *Service) *API { return &API{edge: e, decisions: decisions} }

// Bind gives the API what it reads.
func (a *API) Bind(deps APIDeps) error {
	if deps.Scenes == nil || deps.Trust == nil || deps.Presence == nil || deps.TrustView == nil {
		return errors.New("decide: the scene access API needs scenes, trust, presence and a trust view")
	}
	a.d = &deps
	return nil
}

// Routes registers the scene access routes on mux.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/scenes/{id}/access", a.edge.AuthedOrAgent(a.handleSceneAccess))
	mux.HandleFunc("GET /v1/scenes/{id}/me", a.edge.Authed(a.handleSceneStanding))
}

// AgentTrust is an agent's behavioural trust as answers show it.
type AgentTrust struct {
	State string  `json:"state"`
	Score float64 `json:"score"`
}

// handleSceneAccess tells the signed-in avatar what the scene's policies
// allow it now, with the reason for every deny: joining the scene, and
// entering each of its zones. Each answer is a real, audited decision.
func (a *API) handleSceneAccess(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	sc, ok := a.sceneOr404(w, req)
	if !ok {
		return
	}
	if p.IsAgent() {
		a.agentSceneAccess(w, req, p, sc)
		return
	}
	as := a.d.Trust.Assess(req.Context(), p.Session)
	out := []policy.View{}
	join := scenes.SceneUID(sc.ID)
	out = append(out, policy.ViewOf(scenes.ActionJoinScene, join, a.decisions.Decide(req.Context(), sc, p, as, scenes.ActionJoinScene, join, nil)))
	for _, z := range sc.Zones {
		zone := scenes.ZoneUID(z.ID)
		// Asked from outside the zone: the question is whether the avatar
		// may step in.
		d := a.decisions.Decide(req.Context(), sc, p, as, scenes.ActionEnterZone, zone, map[string]any{scenes.ContextAvatarZone: ""})
		out = append(out, policy.ViewOf(scenes.ActionEnterZone, zone, d))
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"scene": sc.ID, "trust": a.d.TrustView(as), "decisions": out})
}

// agentSceneAccess is GET /v1/scenes/{id}/access for an agent: what its
// delegation and the scene's policies allow it now, each a real, audited
// decision with its reason.
func (a *API) agentSceneAccess(w http.ResponseWriter, req *http.Request, p edge.Principal, sc *scenes.Scene) {
	out := []policy.View{}
	join := scenes.SceneUID(sc.ID)
	scene := agents.Resource{Kind: agents.KindScene, ID: sc.ID}
	ask := func(action string, resource policy.UID, extra map[string]any) bool {
		// Only what the delegation grants is decided: asking about the
		// rest is not an attempt, so it must not count against the agent
		// as probing would (see docs/agents.md, Trust).
		if !GrantsScene(p.Agent.Chain.Leaf(), action, sc.ID) {
			out = append(out, policy.View{Action: action, Resource: resource.String(), Policies: []string{},
				Reason: "agent out-of-scope: delegation " + p.Agent.Chain.Leaf().ID + " does not grant " + action + " in scene " + sc.ID})
			return true
		}
		d, err := a.decisions.DecideAgent(req.Context(), sc, p, agents.Action{Name: action, Resource: scene}, resource, extra)
		if err != nil {
			a.edge.WriteAgentError(w, req, err)
			return false
		}
		out = append(out, policy.ViewOf(action, resource, d))
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
	as := a.decisions.agents.Assess(p.Agent.ID)
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"scene": sc.ID, "agent": p.Agent.ID, "chain": p.Agent.Chain.Path(),
		"trust": AgentTrust{State: string(as.State), Score: as.Score}, "decisions": out,
	})
}

// handleSceneStanding tells the signed-in avatar where the realm sees it
// in the scene: the zone its presence was admitted into, which is the
// zone its twin commands are decided with. A console shows it; it decides
// nothing, so it is not audited.
func (a *API) handleSceneStanding(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	sc, ok := a.sceneOr404(w, req)
	if !ok {
		return
	}
	present, zone, where := a.d.Presence.Standing(sc.ID, p.Avatar.ID, p.Session.ID)
	edge.WriteJSON(w, http.StatusOK, map[string]any{"scene": sc.ID, "present": present, "zone": zone, "where": where})
}

// sceneOr404 finds the scene of the request's {id}.
func (a *API) sceneOr404(w http.ResponseWriter, req *http.Request) (*scenes.Scene, bool) {
	sc, ok := a.d.Scenes.Scene(req.PathValue("id"))
	if !ok {
		a.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no scene " + strconv.Quote(req.PathValue("id"))})
	}
	return sc, ok
}
