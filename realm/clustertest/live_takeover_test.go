package clustertest

import (
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestSecondConnectionOfASessionReplacesTheFirst connects one session
// twice, on one node and then on another node of the cluster: each time
// the older connection is closed with 4409 and a reason, the newer one
// works, and another avatar in the scene keeps receiving poses throughout.
func TestSecondConnectionOfASessionReplacesTheFirst(t *testing.T) {
	a, b := twoNodes(t)
	ada := newOperator(t, a, "ada")
	bystander := newOperator(t, a, "bystander")

	wsBy := dialLive(t, a, bystander.Sess.Token)
	defer wsBy.Close()
	joinFoundry(t, wsBy)

	first := dialLive(t, a, ada.Sess.Token)
	defer first.Close()
	joinFoundry(t, first)
	send(t, first, poseAt(3, 1.6, 4))
	readUntil(t, wsBy, "ada's pose from her first connection", hasPoseOf(ada.ID))

	// Same node: the second connection takes over.
	second := dialLive(t, a, ada.Sess.Token)
	defer second.Close()
	code, reason := waitClosed(t, first)
	if code != realmtest.CloseReplaced || !strings.Contains(reason, "connected again") {
		t.Fatalf("first connection closed with %d %q, want %d saying the session connected again", code, reason, realmtest.CloseReplaced)
	}
	joinFoundry(t, second)
	send(t, second, poseAt(4, 1.6, 4))
	readUntil(t, wsBy, "ada's pose from her second connection", hasPoseOf(ada.ID))

	// Another node: its connection is newer, so the one on a closes.
	third := dialLive(t, b, ada.Sess.Token)
	defer third.Close()
	if code, _ := waitClosed(t, second); code != realmtest.CloseReplaced {
		t.Fatalf("second connection closed with %d after the session connected through another node, want %d", code, realmtest.CloseReplaced)
	}
	joinFoundry(t, third)
	// One pose: through another node it must still follow her join
	// (presence and poses are handled in the order they were sent).
	send(t, third, poseAt(5, 1.6, 4))
	readUntil(t, wsBy, "ada's pose through the other node", hasPoseOf(ada.ID))

	// Nobody else was touched: the bystander's connection still answers.
	send(t, wsBy, `{"type":"ping"}`)
	readUntil(t, wsBy, "the bystander's pong", isType("pong"))
}
