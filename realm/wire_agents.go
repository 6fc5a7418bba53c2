package realm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/delegations"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Agents (see agents/ and docs/agents.md): the guard that authenticates
// them at the edge and decides their actions, and the realm keys whose
// root delegations it honours.

// agentRootsRefresh is how often a node reads the published signers again,
// so that a node started (or a key rotated) elsewhere is trusted here.
const agentRootsRefresh = 10 * time.Second

// agentRootGrace is how long a retired signing key still roots delegations:
// none lives longer than 24 h after it was issued.
const agentRootGrace = 25 * time.Hour

// startAgents opens the guard (its sealed buckets and the revocation
// feed) and binds it into the edge; bg keeps the trusted roots current.
func (r *Realm) startAgents(ctx, bg context.Context) error {
	r.agentRoots = agents.NewRootSet()
	if err := r.refreshAgentRoots(ctx); err != nil {
		return fmt.Errorf("realm: agent roots: %w", err)
	}
	g, err := agents.New(ctx, agents.Config{Store: r.store, Roots: r.agentRoots, Logger: r.log})
	if err != nil {
		return fmt.Errorf("realm: agents: %w", err)
	}
	r.agents = g
	r.edge.BindAgents(g, r.publicBase)
	records, err := r.store.Bucket(ctx, delegations.BucketConfig())
	if err != nil {
		return fmt.Errorf("realm: delegations: %w", err)
	}
	if err := r.delegations.Bind(delegations.Deps{
		Log: r.log, Signer: agents.KeySigner{Key: r.keys.Active}, StepUps: r.stepups.StepUps,
		Revoker: g.Revocations(), Reinstater: g, Records: records, AuditNoWait: r.auditAsync,
	}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if err := r.bindMCP(); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		t := time.NewTicker(agentRootsRefresh)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if err := r.refreshAgentRoots(bg); err != nil && bg.Err() == nil {
					// The set keeps what it had: a key is never trusted
					// for want of a read, and one already trusted stays
					// so only until the next good read.
					r.log.Warn("agent roots not refreshed", "err", err)
				}
			}
		}
	}()
	return nil
}

// stopAgents stops following the revocations.
func (r *Realm) stopAgents() {
	if r.agents != nil {
		r.agents.Close()
	}
}

// publicBase is the URL a DPoP proof's htu names: the realm's first
// origin (its public URL behind a proxy), never a client's Host header.
func (r *Realm) publicBase() *url.URL {
	if o := r.origins(); len(o) > 0 {
		if u, err := url.Parse(o[0]); err == nil {
			return u
		}
	}
	return &url.URL{Scheme: "http", Host: "localhost"}
}

// refreshAgentRoots trusts this node's active and previous keys and every
// node's published signers: current ones, and retired ones for as long as
// a delegation they signed could live.
func (r *Realm) refreshAgentRoots(ctx context.Context) error {
	addrs := []common.Address{}
	if r.keys.Active != nil {
		addrs = append(addrs, agents.KeySigner{Key: r.keys.Active}.Address())
	}
	if r.keys.Previous != nil {
		addrs = append(addrs, agents.KeySigner{Key: r.keys.Previous}.Address())
	}
	signers, err := r.market.Signers(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, s := range signers {
		if s.Until != nil && now.Sub(*s.Until) > agentRootGrace {
			continue
		}
		if a := common.HexToAddress(s.Address); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	r.agentRoots.Set(addrs...)
	return nil
}

// agentRoutes are the routes of agents themselves.
func (r *Realm) agentRoutes(mux *http.ServeMux) {
	r.delegations.Routes(mux)
	r.mcp.Routes(mux)
	mux.HandleFunc("GET /v1/agents/me", r.edge.AgentAuthed(r.handleAgentMe))
}

// agentView is what an agent is told of itself.
type agentView struct {
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
	Trust       agentTrustView    `json:"trust"`
}

type agentTrustView struct {
	State string  `json:"state"`
	Score float64 `json:"score"`
}

// handleAgentMe tells an agent who the realm sees: its chain from its
// owner, what its delegation grants and its trust. It decides nothing.
func (r *Realm) handleAgentMe(w http.ResponseWriter, _ *http.Request, p edge.Principal) {
	a := p.Agent
	leaf := a.Chain.Leaf()
	as := r.agents.Assess(a.ID)
	edge.WriteJSON(w, http.StatusOK, agentView{
		ID: a.ID, Owner: a.Owner(), Delegation: leaf.ID, Chain: a.Chain.Path(),
		Agents: a.Chain.Agents(), Delegations: a.Chain.IDs(),
		Actions: leaf.Actions, Resources: leaf.Resources, Limits: leaf.Limits,
		Expires: leaf.ExpiresAt.UTC(),
		Trust:   agentTrustView{State: string(as.State), Score: as.Score},
	})
}

// stopOwnersAgents revokes every delegation the avatar issued up to now,
// on every node (agents.Revocations.RevokeOwner), and audits it.
func (r *Realm) stopOwnersAgents(ctx context.Context, avatarID, why string) error {
	if r.agents == nil {
		return nil // not started: no agent has been served
	}
	if err := r.agents.Revocations().RevokeOwner(ctx, avatarID, avatarID, why); err != nil {
		return fmt.Errorf("stop the avatar's agents: %w", err)
	}
	r.auditAsync(ctx, audit.Event{
		Actor: avatarID, Action: "RevokeAgents", Resource: fmt.Sprintf("Avatar::%q", avatarID), Outcome: audit.Allow,
		Reasons: []string{"every delegation the avatar issued is revoked: " + why},
	})
	return nil
}

// suspendOwnersAgents stops the agents of an avatar whose trust became
// suspended: their authority is the owner's.
func (r *Realm) suspendOwnersAgents(ctx context.Context, avatarID string) {
	if err := r.stopOwnersAgents(ctx, avatarID, "its owner's trust is suspended"); err != nil {
		r.log.Error("an avatar's trust is suspended; its agents were not stopped", "avatar", avatarID, "err", err)
	}
}
