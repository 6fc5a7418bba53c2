package realmtest

import (
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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
