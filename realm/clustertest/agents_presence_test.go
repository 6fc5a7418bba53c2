package clustertest

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// liveEvent is one realm WebSocket message, or one event of a presence
// message that carries several.
type liveEvent map[string]any

// readLive reads ws until want holds for a message (each event of a
// presence message in turn), and fails after ten seconds.
func readLive(t *testing.T, ws *websocket.Conn, what string, want func(liveEvent) bool) liveEvent {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m liveEvent
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		events := []liveEvent{m}
		if list, ok := m["events"].([]any); ok {
			events = events[:0]
			for _, e := range list {
				ev, _ := e.(map[string]any)
				events = append(events, ev)
			}
		}
		for _, ev := range events {
			if want(ev) {
				return ev
			}
		}
	}
}

func presenceOf(member, event string) func(liveEvent) bool {
	return func(m liveEvent) bool { return m["avatar"] == member && m["event"] == event }
}

func joinScene(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	readLive(t, ws, "joined", func(m liveEvent) bool { return m["type"] == "joined" })
}

// TestAgentPresenceAcrossNodes: an owner delegates to an agent through
// node a (passkey step-up and all), the agent joins a scene over node a's
// realm WebSocket, and a person on node b sees it marked as the owner's
// agent; the owner revokes the delegation through node b, and the agent's
// presence ends on both nodes.
func TestAgentPresenceAcrossNodes(t *testing.T) {
	a, b := nodes.TwoOnCluster(t)
	owner := realmtest.NewOperator(t, a, "oskar")
	alice := realmtest.NewOperator(t, a, "alice")
	bob := realmtest.NewOperator(t, a, "bob")

	wsAlice := dialLive(t, a, alice.Sess.Token)
	defer wsAlice.Close()
	joinScene(t, wsAlice, `{"type":"join","scene":"foundry"}`)
	wsBob := dialLive(t, b, bob.Sess.Token)
	defer wsBob.Close()
	joinScene(t, wsBob, `{"type":"join","scene":"foundry"}`)
	// Each node has heard of the other's member: presence flows both ways.
	readLive(t, wsAlice, "bob's join on node a", presenceOf(bob.ID, "join"))

	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	token, id := owner.IssueDelegation(pub, []string{"JoinScene"}, []map[string]string{{"type": "Scene", "id": "foundry"}})
	wsAgent, hello := realmtest.DialAgentLive(t, a.URL(), a.URL(), key, token)
	defer wsAgent.Close()
	agentID, _ := hello["id"].(string)
	joinScene(t, wsAgent, `{"type":"join","scene":"foundry","name":"Courier"}`)

	m := readLive(t, wsBob, "the agent's join on node b", presenceOf(agentID, "join"))
	on, _ := m["on_behalf_of"].(map[string]any)
	if m["kind"] != "agent" || m["agent"] != agentID || m["name"] != "Courier" || on["avatar"] != owner.ID || on["handle"] != "oskar" || on["depth"] != float64(1) {
		t.Fatalf("bob on node b sees the agent join as %v, want it marked as oskar's agent", m)
	}
	readLive(t, wsAlice, "the agent's join on node a", presenceOf(agentID, "join"))

	// The owner revokes it through node b.
	if code, p := nodes.Client(t, b).With(owner.Sess.Token).Call("DELETE", "/v1/agents/delegations/"+id, nil, nil); code != 200 && code != 204 {
		t.Fatalf("revoke through node b = %d %+v", code, p)
	}
	if code, reason := realmtest.WaitClosed(t, wsAgent); code != edge.CloseSessionEnded || !strings.Contains(reason, "revoked") {
		t.Fatalf("the agent's socket on node a closed with %d %q, want %d naming the revocation", code, reason, edge.CloseSessionEnded)
	}
	readLive(t, wsAlice, "the agent's leave on node a", presenceOf(agentID, "leave"))
	readLive(t, wsBob, "the agent's leave on node b", presenceOf(agentID, "leave"))

}
