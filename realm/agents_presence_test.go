package realm

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// dialAgentLive opens r's realm WebSocket as the agent holding key and
// token.
func dialAgentLive(t *testing.T, r *Realm, key ed25519.PrivateKey, token string) (*websocket.Conn, map[string]any) {
	t.Helper()
	return realmtest.DialAgentLive(t, r.URL(), r.URL(), key, token)
}

// isAgentOf matches a member (a presence join, or a joined snapshot's
// entry) shown as agent acting for owner at depth, through via.
func isAgentOf(m map[string]any, agent, owner, handle string, depth int, via string) bool {
	on, _ := m["on_behalf_of"].(map[string]any)
	return m["kind"] == "agent" && m["agent"] == agent && m["avatar"] == agent &&
		on["avatar"] == owner && on["handle"] == handle && on["depth"] == float64(depth) && (on["via"] == nil && via == "" || on["via"] == via)
}

// TestAgentPresence runs agents in a scene of a real realm over the realm
// WebSocket: an agent joins through its delegation and the scene's
// policies, and the person already there sees it marked as an agent of
// its owner; someone joining later sees it so in the snapshot; a
// sub-agent shows its chain; an agent whose delegation does not name the
// scene is refused with its reason, audited with its chain; MCP's
// scene_members shows the same marks; revoking the delegation closes both
// agents' sockets and takes their presence away, as suspending an agent
// and the owner signing out everywhere do.
func TestAgentPresence(t *testing.T) {
	r := startLocalRealm(t)
	alice := newOperator(t, r, "alice")
	owner := newOperator(t, r, "oskar")
	foundry := agents.Resource{Kind: agents.KindScene, ID: "foundry"}

	wsAlice := dialLive(t, r, alice.Sess.Token)
	defer wsAlice.Close()
	joinFoundry(t, wsAlice)

	key := newAgentKey(t)
	chain := issueDelegation(t, r, owner.ID, key, []string{agents.ActionJoinScene}, []agents.Resource{foundry}, time.Now().Add(-time.Minute), time.Hour)
	wsAgent, hello := dialAgentLive(t, r, key, chain.Token())
	defer wsAgent.Close()
	if hello["id"] != chain.AgentID() || hello["delegation"] != chain.Leaf().ID || !isAgentOf(map[string]any{"kind": "agent", "agent": hello["id"], "avatar": hello["id"], "on_behalf_of": hello["on_behalf_of"]}, chain.AgentID(), owner.ID, "oskar", 1, "") {
		t.Fatalf("agent's hello = %v", hello)
	}

	// An agent sends no XR frames: refused with a reason, the socket stays.
	if err := wsAgent.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if m, _ := readUntil(t, wsAgent, "the refusal of a frame", isType("error")); !strings.Contains(m.Str("reason"), "no XR frames") {
		t.Fatalf("an agent's frame = %v, want a refusal", m)
	}

	send(t, wsAgent, `{"type":"join","scene":"foundry","name":"Guide"}`)
	joined, _ := readUntil(t, wsAgent, "the agent's joined", isType("joined"))
	if !memberOf(joined, alice.ID) {
		t.Fatalf("agent's joined = %v, want alice in it", joined)
	}
	m, _ := readUntil(t, wsAlice, "the agent's presence join", isPresence(chain.AgentID(), "join"))
	if m.Str("name") != "Guide" || !isAgentOf(m, chain.AgentID(), owner.ID, "oskar", 1, "") {
		t.Fatalf("alice sees the agent join as %v, want it marked as oskar's agent named Guide", m)
	}
	eventually(t, "the agent's join in the audit with its chain", func() bool {
		for _, ev := range r.view.Events(audit.Query{Actor: chain.AgentID(), Limit: 100}) {
			if ev.Action == "JoinScene" && ev.Outcome == audit.Allow && ev.Signals["chain"] == chain.Path() && ev.Signals["owner"] == owner.ID {
				return true
			}
		}
		return false
	})

	// A sub-agent, narrowed offline by the agent, shows its chain.
	subKey := newAgentKey(t)
	sub, err := agents.Derive(chain, key, agents.Grant{
		Owner: owner.ID, Agent: agents.EncodeAgentKey(subKey.Public().(ed25519.PublicKey)),
		Actions: []string{agents.ActionJoinScene}, Resources: []agents.Resource{foundry},
		Limits: agents.Limits{MaxRisk: agents.RiskLow}, IssuedAt: chain.Leaf().IssuedAt, ExpiresAt: chain.Leaf().ExpiresAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	wsSub, _ := dialAgentLive(t, r, subKey, sub.Token())
	defer wsSub.Close()
	send(t, wsSub, `{"type":"join","scene":"foundry"}`)
	subJoined, _ := readUntil(t, wsSub, "the sub-agent's joined", isType("joined"))
	m, _ = readUntil(t, wsAlice, "the sub-agent's presence join", isPresence(sub.AgentID(), "join"))
	if m.Str("name") != sub.AgentID() || !isAgentOf(m, sub.AgentID(), owner.ID, "oskar", 2, chain.AgentID()) {
		t.Fatalf("alice sees the sub-agent join as %v, want depth 2 through %s", m, chain.AgentID())
	}
	// The sub-agent's snapshot shows the first agent marked too.
	seen := false
	for _, e := range subJoined["members"].([]any) {
		seen = seen || isAgentOf(e.(map[string]any), chain.AgentID(), owner.ID, "oskar", 1, "")
	}
	if !seen {
		t.Fatalf("sub-agent's joined = %v, want the agent marked as oskar's", subJoined)
	}

	// The owner, joining later, sees both in the snapshot, and a person
	// is marked as one.
	wsOwner := dialLive(t, r, owner.Sess.Token)
	defer wsOwner.Close()
	snap := joinFoundry(t, wsOwner)
	var agentsSeen, people int
	for _, e := range snap["members"].([]any) {
		em := e.(map[string]any)
		switch {
		case isAgentOf(em, chain.AgentID(), owner.ID, "oskar", 1, ""), isAgentOf(em, sub.AgentID(), owner.ID, "oskar", 2, chain.AgentID()):
			agentsSeen++
		case em["kind"] == "person" && em["avatar"] == alice.ID && em["on_behalf_of"] == nil:
			people++
		}
	}
	if agentsSeen != 2 || people != 1 {
		t.Fatalf("owner's joined = %v, want both agents and alice, each marked", snap)
	}

	// Out of scope: a delegation that does not name the scene.
	strayKey := newAgentKey(t)
	stray := issueDelegation(t, r, owner.ID, strayKey, []string{agents.ActionJoinScene}, []agents.Resource{{Kind: agents.KindScene, ID: "harbor"}}, time.Now().Add(-time.Minute), time.Hour)
	wsStray, _ := dialAgentLive(t, r, strayKey, stray.Token())
	defer wsStray.Close()
	send(t, wsStray, `{"type":"join","scene":"foundry"}`)
	refused, _ := readUntil(t, wsStray, "the out-of-scope refusal", isType("error"))
	if refused.Str("code") != "denied" || !strings.Contains(refused.Str("reason"), "out-of-scope") {
		t.Fatalf("out-of-scope join = %v, want denied with out-of-scope", refused)
	}
	eventually(t, "the refused join in the audit with its chain", func() bool {
		for _, ev := range r.view.Events(audit.Query{Actor: stray.AgentID(), Limit: 100}) {
			if ev.Action == "JoinScene" && ev.Outcome == audit.Deny && ev.Signals["chain"] == stray.Path() && strings.Contains(strings.Join(ev.Reasons, " "), "out-of-scope") {
				return true
			}
		}
		return false
	})
	// A name that no one could read is refused before anything is decided.
	send(t, wsStray, `{"type":"join","scene":"foundry","name":""}`)
	if m, _ := readUntil(t, wsStray, "the refusal of an empty name", isType("error")); m.Str("code") != "invalid" {
		t.Fatalf("join with an empty name = %v, want invalid", m)
	}

	// MCP's scene_members shows the same marks, to an agent that may join.
	cs, err := connectMCP(t, r, key, chain.Token())
	if err != nil {
		t.Fatalf("connect MCP: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "scene_members", Arguments: map[string]any{"scene": "foundry"}})
	if err != nil || res.IsError {
		t.Fatalf("scene_members: %v %+v", err, res)
	}
	var listed struct {
		Members []map[string]any `json:"members"`
	}
	remarshal(t, res.StructuredContent, &listed)
	agentsSeen, people = 0, 0
	for _, em := range listed.Members {
		switch {
		case isAgentOf(em, chain.AgentID(), owner.ID, "oskar", 1, "") && em["name"] == "Guide", isAgentOf(em, sub.AgentID(), owner.ID, "oskar", 2, chain.AgentID()):
			agentsSeen++
		case em["kind"] == "person":
			people++
		}
	}
	if agentsSeen != 2 || people != 2 {
		t.Fatalf("scene_members = %v, want both agents marked and two people", listed.Members)
	}
	strayMCP, err := connectMCP(t, r, strayKey, stray.Token())
	if err != nil {
		t.Fatalf("connect MCP: %v", err)
	}
	defer strayMCP.Close()
	res, err = strayMCP.CallTool(context.Background(), &mcp.CallToolParams{Name: "scene_members", Arguments: map[string]any{"scene": "foundry"}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "out-of-scope") {
		t.Fatalf("scene_members out of scope: %v %+v, want a refusal naming out-of-scope", err, res)
	}

	// Revoking the agent's delegation ends it and the sub-agent derived
	// from it: their sockets close with the reason, everyone sees them leave.
	if err := r.agents.Revocations().Revoke(context.Background(), chain.Leaf().ID, owner.ID, "test"); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*websocket.Conn{wsAgent, wsSub} {
		if code, reason := realmtest.WaitClosed(t, ws); code != edge.CloseSessionEnded || !strings.Contains(reason, "revoked") {
			t.Fatalf("revoked agent's socket closed with %d %q, want %d naming the revocation", code, reason, edge.CloseSessionEnded)
		}
	}
	left := map[string]bool{}
	readUntil(t, wsOwner, "both revoked agents leave", func(m wsMsg) bool {
		if m.Str("type") == "presence" && m.Str("event") == "leave" {
			left[m.Str("avatar")] = true
		}
		return left[chain.AgentID()] && left[sub.AgentID()]
	})
	// The stray agent was not revoked: its socket stays, until it is
	// suspended (as its behaviour would have it, on any node).
	send(t, wsStray, `{"type":"ping"}`)
	readUntil(t, wsStray, "the unrevoked agent's pong", isType("pong"))
	if err := r.agents.Revocations().Suspend(context.Background(), stray.AgentID(), owner.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if code, reason := realmtest.WaitClosed(t, wsStray); code != edge.CloseSessionEnded || !strings.Contains(reason, "agent-suspended") {
		t.Fatalf("suspended agent's socket closed with %d %q, want %d naming the suspension", code, reason, edge.CloseSessionEnded)
	}

	// The owner signing out everywhere stops every agent of theirs: one
	// in the scene leaves it.
	lastKey := newAgentKey(t)
	last := issueDelegation(t, r, owner.ID, lastKey, []string{agents.ActionJoinScene}, []agents.Resource{foundry}, time.Now().Add(-time.Minute), time.Hour)
	wsLast, _ := dialAgentLive(t, r, lastKey, last.Token())
	defer wsLast.Close()
	send(t, wsLast, `{"type":"join","scene":"foundry","name":"Porter"}`)
	readUntil(t, wsAlice, "the last agent's join", isPresence(last.AgentID(), "join"))
	owner.Must("POST", "/v1/sessions/logout-all", nil, nil)
	if code, reason := realmtest.WaitClosed(t, wsLast); code != edge.CloseSessionEnded || !strings.Contains(reason, "revoked every delegation") {
		t.Fatalf("the agent of an owner who signed out everywhere closed with %d %q, want %d naming it", code, reason, edge.CloseSessionEnded)
	}
	readUntil(t, wsAlice, "the last agent leaves", isPresence(last.AgentID(), "leave"))
}
