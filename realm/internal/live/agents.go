package live

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/trust"
)

// Agents on the realm WebSocket. An agent opens GET /v1/realm like any
// agent request, with its delegation token (Authorization: DPoP) and an
// RFC 9449 proof bound to the GET and the URL; browsers cannot set those
// headers, but agents are programs. Its connection differs from a
// person's in what it is keyed by and in what ends it:
//
//   - it is one per leaf delegation: the delegation id takes the place of
//     the session id, so an agent that reconnects replaces its older
//     connection on any node (takeover.go), as a session's does;
//   - it is counted and told of notices as the agent, never as its owner,
//     so the owner's notices (approvals, trust) never reach it;
//   - it streams no XR frames and signals no WebRTC: an agent has no
//     body to verify, and its trust is its behaviour;
//   - it ends when its delegation stops standing: a revocation of any
//     block of its chain, its own or an ancestor's suspension, its owner
//     signing out everywhere (all told by the revocations feed on every
//     node, EndAgents, and checked again every agentRecheck), or its
//     delegation's expiry. Its presence then leaves every scene, on every
//     node, as a closed connection's does.

// agentRecheck is how often an agent's connection checks that its
// delegation still stands, beside the revocations feed's word: a feed
// that resumed after a loss reloads its list without telling anyone.
const agentRecheck = 2 * time.Second

// AgentStanding tells whether an agent's chain still stands
// (agents.Revocations.Check): nil, or a refusal naming the revoked
// delegation, the suspended agent or the owner who revoked them all.
type AgentStanding interface {
	Check(c *agents.Chain) error
}

// errNoAgents refuses an agent's connection on a node not given the
// agents' revocations.
var errNoAgents = &edge.Error{Status: http.StatusServiceUnavailable, Type: edge.TypeUnavailable, Detail: "this realm node does not serve agents on the realm WebSocket yet; try again"}

// holder is whom the connection is counted and told of notices as: the
// avatar of a person, the agent's own id for an agent.
func (c *socket) holder() string {
	if c.p.Agent != nil {
		return c.p.Agent.ID
	}
	return c.p.Avatar.ID
}

// connectionKey is what orders a principal's connections (takeover.go):
// a person's session, an agent's leaf delegation.
func connectionKey(p edge.Principal) string {
	if p.Agent != nil {
		return p.Agent.Chain.Leaf().ID
	}
	return p.Session.ID
}

// assess is the trust a person's decision reads; an agent's decision
// reads its own behaviour instead (decide.DecideEither), so it has none.
func (s *Service) assess(ctx context.Context, c *socket) trust.Assessment {
	if c.p.Agent != nil {
		return trust.Assessment{}
	}
	return s.deps.Trust.Assess(ctx, c.sess)
}

// agentMark is how the agent p is shown to everyone in its scene: its
// owner's id and handle, its depth in the owner's chain and, for a
// sub-agent, the agent that delegated to it.
func agentMark(p edge.Principal) Mark {
	chain := p.Agent.Chain.Agents()
	on := &OnBehalfOf{Avatar: p.Avatar.ID, Handle: p.Avatar.Name, Depth: len(chain)}
	if len(chain) > 1 {
		on.Via = chain[len(chain)-2]
	}
	return Mark{Kind: kindAgent, Agent: p.Agent.ID, OnBehalfOf: on}
}

// agentHello is what an agent's hello says of it.
func agentHello(p edge.Principal) map[string]any {
	leaf := p.Agent.Chain.Leaf()
	mark := agentMark(p)
	return map[string]any{
		"id":           p.Agent.ID,
		"delegation":   leaf.ID,
		"chain":        p.Agent.Chain.Agents(),
		"on_behalf_of": mark.OnBehalfOf,
		"expires_at":   leaf.ExpiresAt.UTC().Format(time.RFC3339),
	}
}

// EndAgents closes this node's agent connections whose delegation no
// longer stands, told that ids were revoked (delegations, agents or
// owners, agents.Revocations.OnRevoke); their presence leaves with them,
// and the other nodes are told on the next tick. It does not block.
func (s *Service) EndAgents(ids ...string) {
	if s == nil || s.deps.Agents == nil {
		return
	}
	s.sockets.mu.Lock()
	var conns []*socket
	for _, list := range s.sockets.conns {
		for _, c := range list {
			if c.p.Agent != nil {
				conns = append(conns, c)
			}
		}
	}
	s.sockets.mu.Unlock()
	for _, c := range conns {
		s.endIfFallen(c)
	}
}

// endIfFallen closes an agent's connection whose chain was revoked or
// whose agent is suspended, with the reason. A list this node cannot
// vouch for (its feed lost) closes nothing: every decision the agent asks
// for meanwhile is refused, and the next check decides.
func (s *Service) endIfFallen(c *socket) bool {
	err := s.deps.Agents.Check(c.p.Agent.Chain)
	if err == nil || agents.ReasonOf(err) == "" {
		return false
	}
	var d *agents.DenyError
	reason := "delegation ended: " + err.Error()
	if errors.As(err, &d) {
		reason = "delegation ended: " + string(d.Reason) + ": " + d.Detail
	}
	c.close(closeSessionRevoked, closeReason(reason))
	return true
}

// watchAgentEnd closes an agent's connection when its delegation expires
// (on the realm's clock) or stops standing (checked every agentRecheck of
// real time), until done.
func (s *Service) watchAgentEnd(c *socket, done <-chan struct{}) {
	expiry := s.deps.Clock.NewTimer(c.p.Agent.Chain.Leaf().ExpiresAt.Sub(s.now()))
	defer expiry.Stop()
	check := time.NewTicker(agentRecheck)
	defer check.Stop()
	for {
		select {
		case <-done:
			return
		case <-c.ctx.Done():
			return
		case <-expiry.C():
			c.close(closeSessionRevoked, "delegation ended: expired")
			return
		case <-check.C:
			if s.endIfFallen(c) {
				return
			}
		}
	}
}
