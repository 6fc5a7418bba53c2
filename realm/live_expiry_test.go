package realm

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// TestLiveSocketEndsWithItsSession runs a realm on a manual clock, with
// an idle timeout of 30 minutes and a lifetime of 2 hours, and moves the
// clock instead of waiting. A socket whose client sends nothing is open a
// second before the idle timeout and closed with 4401 at it; a socket
// whose client keeps sending outlives it, keeps its token valid for HTTP,
// is open a second before the lifetime and is closed with 4401 at it.
func TestLiveSocketEndsWithItsSession(t *testing.T) {
	const idle, lifetime, step = 30 * time.Minute, 2 * time.Hour, 5 * time.Minute
	clk := clock.NewManual(time.Now())
	t0 := clk.Now()
	r := startRealm(t, Config{Listen: "localhost:0", SessionIdle: idle, SessionLifetime: lifetime, Clock: clk})
	c := newClient(t, r)
	busy := c.Register(webauthntest.New(), "busy")
	busyWS := dialLive(t, r, busy.Token)
	defer busyWS.Close()
	quiet := c.Register(webauthntest.New(), "quiet")
	quietWS := dialLive(t, r, quiet.Token)
	defer quietWS.Close()

	// advanceTo moves the clock to t in steps, the busy client sending a
	// ping and reading its pong at each: it is open, and it used its
	// socket at that time.
	advanceTo := func(at time.Time) {
		t.Helper()
		for now := clk.Now(); now.Before(at); now = clk.Now() {
			pingPong(t, busyWS, "the socket in use at "+now.Sub(t0).String())
			clk.Advance(min(step, at.Sub(now)))
		}
	}
	// A message from the quiet client just before its idle timeout is
	// answered: the socket is open, and this is its last use.
	advanceTo(t0.Add(idle - time.Second))
	pingPong(t, quietWS, "the quiet socket a second before its idle timeout")
	lastUse := clk.Now()
	// The idle timeout counts from the use as the session records it,
	// which the socket's watch writes within a touch period.
	advanceTo(lastUse.Add(idle + edge.SessionTouchEvery(idle)))
	code, reason := waitClosed(t, quietWS)
	if code != edge.CloseSessionEnded || !strings.Contains(reason, "idle") {
		t.Fatalf("a socket without traffic closed with %d %q, want %d naming the idle timeout", code, reason, edge.CloseSessionEnded)
	}
	if code, p := c.With(quiet.Token).Call("GET", "/v1/avatars/me", nil, nil); code != 401 {
		t.Fatalf("the idle session's token = %d %+v, want 401", code, p)
	}

	if code, p := c.With(busy.Token).Call("GET", "/v1/avatars/me", nil, nil); code != 200 {
		t.Fatalf("the token of a session used only over its socket = %d %+v, want 200: socket traffic is use", code, p)
	}
	advanceTo(t0.Add(lifetime - time.Second))
	pingPong(t, busyWS, "the socket in use a second before its lifetime")
	clk.Advance(time.Second)
	code, reason = waitClosed(t, busyWS)
	if code != edge.CloseSessionEnded || !strings.Contains(reason, "lifetime") {
		t.Fatalf("the socket in use closed with %d %q, want %d naming the lifetime", code, reason, edge.CloseSessionEnded)
	}
}

// pingPong sends a ping on ws and reads up to its pong; the socket being
// closed instead fails the test, as what.
func pingPong(t *testing.T, ws *websocket.Conn, what string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatalf("%s: write a ping: %v", what, err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m struct {
			Type string `json:"type"`
		}
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("%s: no pong: %v", what, err)
		}
		if m.Type == "pong" {
			return
		}
	}
}

// TestTwinFeedEndsWithItsSession checks, on a manual clock, that a twin
// console feed is closed with 4401 when its session is revoked, and when
// its session idles out (a console sends nothing: its use is the
// session's HTTP requests), and not before: a feed whose session is
// revoked a second before the idle timeout closes naming the sign-out.
func TestTwinFeedEndsWithItsSession(t *testing.T) {
	const idle = 30 * time.Minute
	clk := clock.NewManual(time.Now())
	r := startRealm(t, Config{Listen: "localhost:0", SessionIdle: idle, SessionLifetime: time.Hour, Clock: clk})
	waitTwinsLive(t, r)
	signedOut := newOperator(t, r, "ada", "operator")
	idler := newOperator(t, r, "grace", "operator")
	dial := func(o operator) *websocket.Conn {
		url := "ws" + strings.TrimPrefix(r.URL(), "http") + "/v1/twins/feed"
		ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + o.Token}})
		if err != nil {
			t.Fatal(err)
		}
		// The first message is sent once the feed's end is timed.
		var first struct {
			Type string `json:"type"`
		}
		if err := ws.ReadJSON(&first); err != nil || first.Type != "twins" {
			t.Fatalf("the feed's first message = %+v, %v; want its twins", first, err)
		}
		return ws
	}
	revokedWS, idleWS := dial(signedOut), dial(idler)
	defer revokedWS.Close()
	defer idleWS.Close()

	clk.Advance(idle - time.Second)
	signedOut.Must("POST", "/v1/sessions/logout", nil, nil)
	if code, reason := waitClosed(t, revokedWS); code != edge.CloseSessionEnded || !strings.Contains(reason, "signed out") {
		t.Fatalf("the feed of a session signed out a second before its idle timeout closed with %d %q, want %d naming the sign-out", code, reason, edge.CloseSessionEnded)
	}
	clk.Advance(time.Second)
	if code, reason := waitClosed(t, idleWS); code != edge.CloseSessionEnded || !strings.Contains(reason, "idle") {
		t.Fatalf("the feed of an idle session closed with %d %q, want %d naming the idle timeout", code, reason, edge.CloseSessionEnded)
	}
}
