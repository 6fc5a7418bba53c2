package delegations

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/cascade"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// rootsRefresh is how often a node reads the published signers again, so
// that a node started (or a key rotated) elsewhere is trusted here.
const rootsRefresh = 10 * time.Second

// rootGrace is how long a retired signing key still roots delegations:
// none lives longer than 24 h after it was issued.
const rootGrace = 25 * time.Hour

// Published is a node's published signing key: current while Until is
// nil, retired since Until.
type Published struct {
	Address common.Address
	Until   *time.Time
}

// Roots keeps the set of keys whose root delegations this node honours:
// its own active and previous keys, and every node's published signers,
// current ones and retired ones for as long as a delegation they signed
// could live.
type Roots struct {
	Set *agents.RootSet
	// Own are this node's active and previous keys.
	Own []common.Address
	// Published reads every node's published signers.
	Published func(ctx context.Context) ([]Published, error)
	Log       *slog.Logger
	// Clock judges how long ago a key stopped signing and paces Run
	// (the system's clock if nil).
	Clock clock.Clock
}

// Refresh reads the published signers once and sets the trusted roots.
func (r *Roots) Refresh(ctx context.Context) error {
	addrs := slices.Clone(r.Own)
	published, err := r.Published(ctx)
	if err != nil {
		return err
	}
	now := clock.Or(r.Clock).Now
	for _, s := range published {
		if s.Until != nil && now().Sub(*s.Until) > rootGrace {
			continue
		}
		if !slices.Contains(addrs, s.Address) {
			addrs = append(addrs, s.Address)
		}
	}
	r.Set.Set(addrs...)
	return nil
}

// Run refreshes the roots until ctx ends.
func (r *Roots) Run(ctx context.Context) {
	clock.Every(ctx, clock.Or(r.Clock), rootsRefresh, func(ctx context.Context) {
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			// The set keeps what it had: a key is never trusted for
			// want of a read, and one already trusted stays so only
			// until the next good read.
			r.Log.Warn("agent roots not refreshed", "err", err)
		}
	})
}

// AgentView is what an agent is told of itself.
type AgentView struct {
	ID          string            `json:"id"`
	Owner       string            `json:"owner"`
	Delegation  string            `json:"delegation"`
	Chain       string            `json:"chain"`
	Agents      []string          `json:"agents"`
	Delegations []string          `json:"delegations"`
	Actions     []string          `json:"actions"`
	Resources   []agents.Resource `json:"resources"`
	Limits      agents.Limits     `json:"limits"`
	Expires     time.Time         `json:"expires"`
	Trust       AgentTrustView    `json:"trust"`
}

// AgentTrustView is an agent's trust as it is told.
type AgentTrustView struct {
	State string  `json:"state"`
	Score float64 `json:"score"`
}

// handleAgentMe tells an agent who the realm sees: its chain from its
// owner, what its delegation grants and its trust. It decides nothing.
func (a *API) handleAgentMe(w http.ResponseWriter, _ *http.Request, p edge.Principal) {
	ag := p.Agent
	leaf := ag.Chain.Leaf()
	as := a.AgentTrust.Assess(ag.ID)
	edge.WriteJSON(w, http.StatusOK, AgentView{
		ID: ag.ID, Owner: ag.Owner(), Delegation: leaf.ID, Chain: ag.Chain.Path(),
		Agents: ag.Chain.Agents(), Delegations: ag.Chain.IDs(),
		Actions: leaf.Actions, Resources: leaf.Resources, Limits: leaf.Limits,
		Expires: leaf.ExpiresAt.UTC(),
		Trust:   AgentTrustView{State: string(as.State), Score: as.Score},
	})
}

// StopOwnersAgents revokes every delegation the avatar issued up to now,
// on every node (told at once over core NATS; the store follows, retried
// in the background while it cannot be written), and audits it. Before
// Bind no agent has been served, and there is nothing to stop.
func (a *API) StopOwnersAgents(ctx context.Context, avatarID, why string) (cascade.Outcome, error) {
	if a.Deps == nil {
		return cascade.Outcome{}, nil
	}
	out, err := a.cascade.RevokeOwner(ctx, avatarID, avatarID, why)
	if err != nil {
		return out, fmt.Errorf("stop the avatar's agents: %w", err)
	}
	a.AuditNoWait(ctx, audit.Event{
		Actor: avatarID, Action: "RevokeAgents", Resource: fmt.Sprintf("Avatar::%q", avatarID), Outcome: audit.Allow,
		Reasons: []string{"every delegation the avatar issued is revoked: " + why},
		Signals: map[string]any{"nodes_told": out.NodesTold, "nodes_live": out.NodesLive, "stored": out.Stored},
	})
	return out, nil
}

// StopOwnersAgentsNow stops the avatar's agents and reports whether they
// are stopped: on this node and every live node told, the store's record
// following (see StopOwnersAgents). Only an avatar id that is not one
// fails it.
func (a *API) StopOwnersAgentsNow(ctx context.Context, avatarID, why string) bool {
	if _, err := a.StopOwnersAgents(ctx, avatarID, why); err != nil {
		a.Log.Error("an avatar's agents not stopped", "avatar", avatarID, "err", err)
		return false
	}
	return true
}

// SuspendOwnersAgents stops the agents of an avatar whose trust became
// suspended: their authority is the owner's.
func (a *API) SuspendOwnersAgents(ctx context.Context, avatarID string) {
	if _, err := a.StopOwnersAgents(ctx, avatarID, "its owner's trust is suspended"); err != nil {
		a.Log.Error("an avatar's trust is suspended; its agents were not stopped", "avatar", avatarID, "err", err)
	}
}
