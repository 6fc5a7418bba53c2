package realm

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestALiveSocketRunsOffItsUpgradeRequest: a realm WebSocket runs on
// goroutines of its own once upgraded, not under the HTTP server's
// handler, whose stack the upgrade grew and which a parked writer would
// keep for the socket's whole life (16 KiB a connection). The socket
// still answers after that handler has returned, and is still told, with
// a going-away close frame, when the realm stops.
func TestALiveSocketRunsOffItsUpgradeRequest(t *testing.T) {
	r, stop := runRealm(t, Config{Listen: "localhost:0"})
	sess := newClient(t, r).Register(webauthntest.New(), "socket")
	ws := dialLive(t, r, sess.Token)
	send(t, ws, `{"type":"ping"}`)
	readUntil(t, ws, "pong", isType("pong"))

	writers, readers, underHandler := liveSocketGoroutines(t)
	if writers != 1 || readers != 1 {
		t.Fatalf("%d live writers and %d readers running, want one of each for the one socket", writers, readers)
	}
	if underHandler != 0 {
		t.Fatalf("%d of the socket's goroutines run under the HTTP server's handler, want none", underHandler)
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	code, reason := realmtest.WaitClosed(t, ws)
	<-stopped
	if code != websocket.CloseGoingAway || !strings.Contains(reason, "stopping") {
		t.Fatalf("the stopping realm closed the socket with %d %q, want %d and a reason that says it is stopping", code, reason, websocket.CloseGoingAway)
	}
}

// liveSocketGoroutines counts the goroutines writing and reading realm
// WebSockets, and those of them that run under an HTTP handler.
func liveSocketGoroutines(t *testing.T) (writers, readers, underHandler int) {
	t.Helper()
	var dump bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&dump, 2); err != nil {
		t.Fatal(err)
	}
	for _, g := range strings.Split(dump.String(), "\n\n") {
		writer := strings.Contains(g, "live.(*Service).liveWriter(")
		reader := strings.Contains(g, "live.(*Service).liveReader(")
		if writer {
			writers++
		}
		if reader {
			readers++
		}
		if (writer || reader) && strings.Contains(g, "net/http.(*conn).serve(") {
			underHandler++
		}
	}
	return writers, readers, underHandler
}
