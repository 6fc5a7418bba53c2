package realm

import (
	"context"
	"strconv"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/realm/internal/decide"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/mcpapi"
	"github.com/zerorealm/zerorealm/scenes"
)

// MCP for agents (realm/internal/mcpapi) and what the realm gives it.

func (r *Realm) bindMCP() error {
	return r.mcp.Bind(mcpapi.Deps{
		Log: r.log, Scenes: mcpScenes{r}, Trail: r.view, Version: buildinfo.Get().Version, Base: r.publicBase,
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
