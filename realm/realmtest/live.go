package realmtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
