package decide

import (
	"context"
	"strconv"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

// What an agent's MCP tools ask of scenes: which the realm serves, which
// its delegation names, and whether it may join one now.

// Scenes lists the scenes the realm serves.
func (a *API) Scenes() []*scenes.Scene { return a.d.Scenes.Scenes() }

// GrantsAgent reports whether the agent's delegation grants action in
// scene, so that listing scenes never counts as an attempt.
func (a *API) GrantsAgent(p edge.Principal, action, scene string) bool {
	return GrantsScene(p.Agent.Chain.Leaf(), action, scene)
}

// DecideAgentJoin decides the agent's JoinScene on the scene of that id,
// audited; a scene the realm does not serve is a deny with its reason. An
// error is a failure to decide (or the agent refused at its delegation as
// a whole), never a deny.
func (a *API) DecideAgentJoin(ctx context.Context, p edge.Principal, sceneID string) (policy.Decision, error) {
	sc, ok := a.d.Scenes.Scene(sceneID)
	if !ok {
		return policy.Decision{Reason: "no scene " + strconv.Quote(sceneID)}, nil
	}
	act := agents.Action{Name: scenes.ActionJoinScene, Resource: agents.Resource{Kind: agents.KindScene, ID: sc.ID}}
	return a.decisions.DecideAgent(ctx, sc, p, act, scenes.SceneUID(sc.ID), nil)
}
