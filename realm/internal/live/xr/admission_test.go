package xr

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
)

// TestBehindNodeOpensNoNewStream: while the engine says the node is
// behind, a session that already streams here is let in (a second
// connection of it, or its move to a data channel) and a new session is
// refused, saying by how much the node is behind and when to retry; once
// the node has caught up, the new session opens its stream. The engine's
// Behind itself follows its read lag (biometrics
// TestOverloadedNodeSuspendsNoStream).
func TestBehindNodeOpensNoNewStream(t *testing.T) {
	behind, lag := false, time.Duration(0)
	adm := &admission{behind: func(time.Time) (bool, time.Duration) { return behind, lag }}
	reg := registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}
	open := func(id string) (*sessionStream, *BusyError) {
		x, created, busy := reg.acquire(session.Session{ID: id, Avatar: "av-" + id}, adm, time.Now())
		if created {
			x.mu.Unlock()
		}
		return x, busy
	}

	old, busy := open("streaming")
	if busy != nil || old == nil {
		t.Fatalf("a node that keeps up refused a stream: %v", busy)
	}
	behind, lag = true, 1234*time.Millisecond
	if again, busy := open("streaming"); busy != nil || again != old {
		t.Fatalf("a behind node refused a session that already streams on it: %v", busy)
	}
	x, busy := open("new")
	if x != nil || busy == nil {
		t.Fatal("a behind node opened a new stream")
	}
	if busy.Cause != BusyBehind || !errors.Is(busy, ErrNodeBusy) || !strings.Contains(busy.Reason, "behind its XR streams by 1.234s") || busy.RetryAfterSeconds() != 5 {
		t.Fatalf("refusal = %+v, want cause behind, the lag in the reason and a retry after 5 s", busy)
	}
	if n := adm.open.Load(); n != 1 || reg.streams() != 1 {
		t.Fatalf("after a refusal the node counts %d streams and holds %d, want 1", n, reg.streams())
	}

	behind, lag = false, 50*time.Millisecond
	if x, busy := open("new"); busy != nil || x == nil {
		t.Fatalf("a node that caught up refused a new stream: %v", busy)
	}
	if n := adm.open.Load(); n != 2 {
		t.Fatalf("open streams = %d, want 2", n)
	}
}

// TestCapacityCountsStreamsNotConnections: the cap counts sessions'
// streams; a session's second connection takes no second place, and a
// place comes back only when the stream's last connection lets go.
func TestCapacityCountsStreamsNotConnections(t *testing.T) {
	adm := &admission{max: 1, behind: func(time.Time) (bool, time.Duration) { return false, 0 }}
	reg := registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}
	acquire := func(id string) (*sessionStream, *BusyError) {
		x, created, busy := reg.acquire(session.Session{ID: id}, adm, time.Now())
		if created {
			x.mu.Unlock()
		}
		return x, busy
	}
	a1, _ := acquire("a")
	a2, busy := acquire("a")
	if busy != nil || a2 != a1 {
		t.Fatalf("a session's second connection was refused at the cap: %v", busy)
	}
	if _, busy := acquire("b"); busy == nil || busy.Cause != BusyCapacity || busy.RetryAfterSeconds() != 15 || !strings.Contains(busy.Reason, "serves 1 XR streams") {
		t.Fatalf("a new session at the cap = %+v, want a capacity refusal", busy)
	}
	if reg.release(a1, adm) {
		t.Fatal("the stream was freed while a connection still held it")
	}
	if _, busy := acquire("b"); busy == nil {
		t.Fatal("a place came back while the stream still had a connection")
	}
	if !reg.release(a2, adm) {
		t.Fatal("the last connection did not free the stream")
	}
	if _, busy := acquire("b"); busy != nil {
		t.Fatalf("with the stream ended, a new one was refused: %v", busy)
	}
}
