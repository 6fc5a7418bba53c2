package realm

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// TestLiveSocketEndsWithItsSession runs a realm with a short idle timeout
// and lifetime. A socket whose client sends nothing is closed with 4401 at
// the idle timeout; a socket whose client keeps sending outlives it, keeps
// its token valid for HTTP, and is closed with 4401 at the lifetime.
func TestLiveSocketEndsWithItsSession(t *testing.T) {
	const idle = 3 * time.Second
	r := startRealm(t, Config{Listen: "localhost:0", SessionIdle: idle, SessionLifetime: 8 * time.Second})
	c := newClient(t, r)

	busyAuth := webauthntest.New()
	busy := c.Register(busyAuth, "busy")
	busyWS := dialLive(t, r, busy.Token)
	defer busyWS.Close()
	type closed struct {
		code   int
		reason string
	}
	busyClosed := make(chan closed, 1)
	go func() {
		_ = busyWS.SetReadDeadline(time.Now().Add(time.Minute))
		for {
			if _, _, err := busyWS.ReadMessage(); err != nil {
				ce, _ := err.(*websocket.CloseError)
				if ce == nil {
					busyClosed <- closed{-1, err.Error()}
					return
				}
				busyClosed <- closed{ce.Code, ce.Text}
				return
			}
		}
	}()
	stopPinging := make(chan struct{})
	defer close(stopPinging)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPinging:
				return
			case <-tick.C:
				if busyWS.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
					return
				}
			}
		}
	}()

	// Connected after the busy one, so when it idles out the busy socket
	// has gone longer than the idle timeout without an HTTP request.
	quiet := c.Register(webauthntest.New(), "quiet")
	quietWS := dialLive(t, r, quiet.Token)
	defer quietWS.Close()
	code, reason := waitClosed(t, quietWS)
	if code != edge.CloseSessionEnded || !strings.Contains(reason, "idle") {
		t.Fatalf("a socket without traffic closed with %d %q, want %d naming the idle timeout", code, reason, edge.CloseSessionEnded)
	}
	if code, p := c.With(quiet.Token).Call("GET", "/v1/avatars/me", nil, nil); code != 401 {
		t.Fatalf("the idle session's token = %d %+v, want 401", code, p)
	}

	select {
	case got := <-busyClosed:
		t.Fatalf("the socket in use closed with %d %q before its lifetime", got.code, got.reason)
	default:
	}
	if code, p := c.With(busy.Token).Call("GET", "/v1/avatars/me", nil, nil); code != 200 {
		t.Fatalf("the token of a session used only over its socket = %d %+v, want 200: socket traffic is use", code, p)
	}
	select {
	case got := <-busyClosed:
		if got.code != edge.CloseSessionEnded || !strings.Contains(got.reason, "lifetime") {
			t.Fatalf("the socket in use closed with %d %q, want %d naming the lifetime", got.code, got.reason, edge.CloseSessionEnded)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the socket in use was not closed at its session's lifetime")
	}
}

// TestTwinFeedEndsWithItsSession checks that a twin console feed is closed
// with 4401 when its session is revoked, and when its session idles out
// (a console sends nothing: its use is the session's HTTP requests).
func TestTwinFeedEndsWithItsSession(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", SessionIdle: 3 * time.Second, SessionLifetime: time.Hour})
	waitTwinsLive(t, r)
	signedOut := newOperator(t, r, "ada", "operator")
	idle := newOperator(t, r, "grace", "operator")
	dial := func(o operator) *websocket.Conn {
		url := "ws" + strings.TrimPrefix(r.URL(), "http") + "/v1/twins/feed"
		ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + o.Token}})
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	revokedWS, idleWS := dial(signedOut), dial(idle)
	defer revokedWS.Close()
	defer idleWS.Close()

	signedOut.Must("POST", "/v1/sessions/logout", nil, nil)
	if code, reason := waitClosed(t, revokedWS); code != edge.CloseSessionEnded || !strings.Contains(reason, "signed out") {
		t.Fatalf("the feed of a signed-out session closed with %d %q, want %d naming the sign-out", code, reason, edge.CloseSessionEnded)
	}
	if code, reason := waitClosed(t, idleWS); code != edge.CloseSessionEnded || !strings.Contains(reason, "idle") {
		t.Fatalf("the feed of an idle session closed with %d %q, want %d naming the idle timeout", code, reason, edge.CloseSessionEnded)
	}
}
