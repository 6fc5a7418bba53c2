package realmtest

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/agents"
)

// LiveMessage is the part of a realm WebSocket message the tests read.
type LiveMessage struct {
	Type  string         `json:"type"`
	Trust map[string]any `json:"trust,omitempty"`
}

// DialLive opens the realm WebSocket of the node at url with a bearer
// token and reads the hello.
func DialLive(t testing.TB, url, token string) *websocket.Conn {
	t.Helper()
	ws := "ws" + strings.TrimPrefix(url, "http") + "/v1/realm"
	conn, resp, err := websocket.DefaultDialer.Dial(ws, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", ws, err, status)
	}
	var hello LiveMessage
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.Trust["state"] == nil {
		t.Fatalf("first message = %+v, %v; want a hello with trust", hello, err)
	}
	return conn
}

// WaitClosed reads until the server closes the socket and returns the
// close code and reason.
func WaitClosed(t testing.TB, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code, ce.Text
			}
			t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

// LiveMsg is any realm WebSocket message, read loosely.
type LiveMsg map[string]any

// Str is the string value of k, or "".
func (m LiveMsg) Str(k string) string { s, _ := m[k].(string); return s }

// Send writes msg on the realm WebSocket.
func Send(t testing.TB, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

// ReadUntil reads messages until one satisfies want, and returns it with
// the ones before it. A presence message with several events is read as
// one presence message per event, in order.
func ReadUntil(t testing.TB, ws *websocket.Conn, what string, want func(LiveMsg) bool) (LiveMsg, []LiveMsg) {
	t.Helper()
	var before []LiveMsg
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v (read before: %v)", what, err, before)
		}
		var m LiveMsg
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("message %q is not JSON: %v", data, err)
		}
		for _, m := range presenceEvents(m) {
			if want(m) {
				return m, before
			}
			before = append(before, m)
		}
	}
}

// presenceEvents splits a presence message with an events list into one
// message per event; any other message is itself.
func presenceEvents(m LiveMsg) []LiveMsg {
	events, ok := m["events"].([]any)
	if m.Str("type") != "presence" || !ok {
		return []LiveMsg{m}
	}
	out := make([]LiveMsg, 0, len(events))
	for _, ev := range events {
		e, _ := ev.(map[string]any)
		one := LiveMsg{"type": "presence", "scene": m["scene"]}
		for k, v := range e {
			one[k] = v
		}
		out = append(out, one)
	}
	return out
}

// PoseAt is a pose message with the head at x, y, z.
func PoseAt(x, y, z float64) string {
	b, _ := json.Marshal(map[string]any{"type": "pose", "head": map[string]any{"pos": []float64{x, y, z}, "rot": []float64{0, 0, 0, 1}}})
	return string(b)
}

// IsType matches a message of type typ.
func IsType(typ string) func(LiveMsg) bool {
	return func(m LiveMsg) bool { return m.Str("type") == typ }
}

// HasPoseOf matches a poses message that carries the avatar's pose.
func HasPoseOf(avatar string) func(LiveMsg) bool {
	return func(m LiveMsg) bool {
		if m.Str("type") != "poses" {
			return false
		}
		list, _ := m["poses"].([]any)
		for _, p := range list {
			if pm, _ := p.(map[string]any); pm["avatar"] == avatar {
				return true
			}
		}
		return false
	}
}

// IsPresence matches the avatar's presence event (join, leave, zone).
func IsPresence(avatar, event string) func(LiveMsg) bool {
	return func(m LiveMsg) bool {
		return m.Str("type") == "presence" && m.Str("avatar") == avatar && m.Str("event") == event
	}
}

// JoinFoundry joins the foundry scene and returns the joined snapshot.
func JoinFoundry(t testing.TB, ws *websocket.Conn) LiveMsg {
	t.Helper()
	Send(t, ws, `{"type":"join","scene":"foundry"}`)
	m, _ := ReadUntil(t, ws, "joined", IsType("joined"))
	if m.Str("scene") != "foundry" {
		t.Fatalf("joined = %v, want scene foundry", m)
	}
	return m
}

// MemberOf reports whether a joined snapshot lists the avatar.
func MemberOf(joined LiveMsg, avatar string) bool {
	members, _ := joined["members"].([]any)
	for _, mv := range members {
		if m, _ := mv.(map[string]any); m["avatar"] == avatar {
			return true
		}
	}
	return false
}

// The realm WebSocket's close codes and limits, as clients/PROTOCOL.md
// documents them: the tests that drive a whole realm check the wire.
const (
	CloseReplaced        = 4409
	CloseTooManyMessages = 4429
	LiveMaxMessage       = 16 << 10
)

// Codes of the error messages clients branch on.
const (
	CodeInvalid      = "invalid"
	CodeDenied       = "denied"
	CodeUnknownScene = "unknown-scene"
	CodeNotJoined    = "not-joined"
)

// PresenceEvent is one join, leave or zone change of a member, as realm
// nodes tell each other of it (docs/architecture.md), for tests that
// speak as another node.
type PresenceEvent map[string]string

// EncodeJSON is v as JSON; tests encode only what encodes.
func EncodeJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// SignedBy signs msg for subject as a node of n's cluster would: the test
// stands in for a node, so it holds the cluster key.
func SignedBy(n Node, msg *nats.Msg, subject string) *nats.Msg {
	Probe(n).SignCluster(msg, subject)
	return msg
}

// PublishSigned publishes data on subject as a node of n's cluster.
func PublishSigned(n Node, nc *nats.Conn, subject string, data []byte) error {
	return nc.PublishMsg(SignedBy(n, &nats.Msg{Subject: subject, Data: data}, subject))
}

// DialAgentLive opens the realm WebSocket of the node at url as an agent:
// its delegation token as Authorization: DPoP and a proof signed with key
// for GET base/v1/realm (base is the realm's public URL, which a proof's
// htu names), sent again with the node's nonce when the first is refused
// for want of one (RFC 9449 section 8). It reads the hello and returns
// its agent part.
func DialAgentLive(t testing.TB, url, base string, key ed25519.PrivateKey, token string) (*websocket.Conn, map[string]any) {
	t.Helper()
	ws := "ws" + strings.TrimPrefix(url, "http") + "/v1/realm"
	nonce := ""
	for range 2 {
		proof, err := agents.NewProof(key, "GET", base+"/v1/realm", token, nonce, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(ws, http.Header{"Authorization": {"DPoP " + token}, "DPoP": {proof}})
		if err != nil {
			if resp != nil && resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("DPoP-Nonce") != "" && nonce == "" {
				nonce = resp.Header.Get("DPoP-Nonce")
				continue
			}
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("dial %s as an agent: %v (status %d)", ws, err, status)
		}
		var hello struct {
			Type  string         `json:"type"`
			Agent map[string]any `json:"agent"`
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.Agent["id"] == nil {
			t.Fatalf("an agent's first message = %+v, %v; want a hello naming the agent", hello, err)
		}
		return conn, hello.Agent
	}
	t.Fatalf("dial %s as an agent: still asked for a nonce after sending one", ws)
	return nil, nil
}
