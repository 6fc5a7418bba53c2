package realm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/realm/internal/decide"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/mcpapi"
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// MCP for agents (realm/internal/mcpapi) and what the realm gives it.

func (r *Realm) bindMCP() error {
	return r.mcp.Bind(mcpapi.Deps{
		Log: r.log, Scenes: mcpScenes{r}, Twins: mcpTwins{r}, Market: mcpMarket{r}, Trail: r.view, Version: buildinfo.Get().Version, Base: r.publicBase,
	})
}

// mcpScenes is the catalog and the agent decision as MCP's tools ask them.
type mcpScenes struct{ r *Realm }

func (s mcpScenes) List() []mcpapi.Scene {
	out := []mcpapi.Scene{}
	for _, sc := range s.r.catalog.Scenes() {
		out = append(out, mcpapi.Scene{ID: sc.ID, Name: sc.Name})
	}
	return out
}

func (s mcpScenes) Granted(p edge.Principal, action, scene string) bool {
	return decide.GrantsScene(p.Agent.Chain.Leaf(), action, scene)
}

func (s mcpScenes) DecideJoin(ctx context.Context, p edge.Principal, scene string) (mcpapi.Decision, error) {
	sc, ok := s.r.catalog.Scene(scene)
	if !ok {
		return mcpapi.Decision{Reason: "no scene " + strconv.Quote(scene), Policies: []string{}}, nil
	}
	d, err := s.r.decisions.DecideAgent(ctx, sc, p, agents.Action{Name: scenes.ActionJoinScene, Resource: agents.Resource{Kind: agents.KindScene, ID: sc.ID}}, scenes.SceneUID(sc.ID), nil)
	if err != nil {
		return mcpapi.Decision{}, err
	}
	if d.Policies == nil {
		d.Policies = []string{} // JSON says []
	}
	return mcpapi.Decision{Allow: d.Allow, Reason: d.Reason, Policies: d.Policies}, nil
}

// mcpTwins is the twin API's own path for MCP's twin tools: a refusal
// comes back in the words the route answers with.
type mcpTwins struct{ r *Realm }

func (t mcpTwins) State(ctx context.Context, p edge.Principal, twinID string) (json.RawMessage, error) {
	v, err := t.r.twinAPI.View(ctx, p, twinID)
	if err != nil {
		return nil, mcpRefusal(err)
	}
	return edge.EncodeJSON(v), nil
}

func (t mcpTwins) Command(req *http.Request, p edge.Principal, twinID, actuatorID, key string, cr twin.CommandRequest) (json.RawMessage, error) {
	out, err := t.r.twinAPI.Command(req, p, twinID, actuatorID, key, cr)
	if err != nil {
		return nil, mcpRefusal(err)
	}
	return out.Body, nil
}

// mcpRefusal is a twin route's refusal as the tool reports it; the
// realm's failures (its store unavailable, say) stay errors.
func mcpRefusal(err error) error {
	err = twins.Problem(err)
	var he *edge.Error
	pe, isProblem := problem.As(err)
	if errors.As(err, &he) && he.Status < 500 || isProblem && pe.Status < 500 {
		return &mcpapi.Refusal{Detail: edge.PublicDetail(err)}
	}
	return err
}

// mcpMarket is the market part's own path for MCP's market tools.
type mcpMarket struct{ r *Realm }

func (m mcpMarket) Holdings(p edge.Principal) json.RawMessage {
	return edge.EncodeJSON(m.r.marketAPI.Holdings(p.Avatar.ID))
}

func (m mcpMarket) Transfer(ctx context.Context, p edge.Principal, body []byte, key string) (json.RawMessage, error) {
	out, err := m.r.marketAPI.AgentTransfer(ctx, p, body, key)
	if err != nil {
		return nil, mcpRefusal(edge.AgentError(err))
	}
	return out.Body, nil
}
