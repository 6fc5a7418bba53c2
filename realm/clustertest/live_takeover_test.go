package clustertest

import (
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestSecondConnectionOfASessionReplacesTheFirst connects one session
// twice, on one node and then on another node of the cluster: each time
// the older connection is closed with 4409 and a reason, the newer one
// works, and another avatar in the scene keeps receiving poses throughout.
func TestSecondConnectionOfASessionReplacesTheFirst(t *testing.T) {
	a, b := nodes.TwoOnCluster(t)
	ada := realmtest.NewOperator(t, a, "ada")
	bystander := realmtest.NewOperator(t, a, "bystander")

	wsBy := dialLive(t, a, bystander.Sess.Token)
	defer wsBy.Close()
	realmtest.JoinFoundry(t, wsBy)

	first := dialLive(t, a, ada.Sess.Token)
	defer first.Close()
	realmtest.JoinFoundry(t, first)
	realmtest.Send(t, first, realmtest.PoseAt(3, 1.6, 4))
	realmtest.ReadUntil(t, wsBy, "ada's pose from her first connection", realmtest.HasPoseOf(ada.ID))

	// Same node: the second connection takes over.
	second := dialLive(t, a, ada.Sess.Token)
	defer second.Close()
	code, reason := realmtest.WaitClosed(t, first)
	if code != realmtest.CloseReplaced || !strings.Contains(reason, "connected again") {
		t.Fatalf("first connection closed with %d %q, want %d saying the session connected again", code, reason, realmtest.CloseReplaced)
	}
	realmtest.JoinFoundry(t, second)
	realmtest.Send(t, second, realmtest.PoseAt(4, 1.6, 4))
	realmtest.ReadUntil(t, wsBy, "ada's pose from her second connection", realmtest.HasPoseOf(ada.ID))

	// Another node: its connection is newer, so the one on a closes.
	third := dialLive(t, b, ada.Sess.Token)
	defer third.Close()
	if code, _ := realmtest.WaitClosed(t, second); code != realmtest.CloseReplaced {
		t.Fatalf("second connection closed with %d after the session connected through another node, want %d", code, realmtest.CloseReplaced)
	}
	realmtest.JoinFoundry(t, third)
	// One pose: through another node it must still follow her join
	// (presence and poses are handled in the order they were sent).
	realmtest.Send(t, third, realmtest.PoseAt(5, 1.6, 4))
	realmtest.ReadUntil(t, wsBy, "ada's pose through the other node", realmtest.HasPoseOf(ada.ID))

	// Nobody else was touched: the bystander's connection still answers.
	realmtest.Send(t, wsBy, `{"type":"ping"}`)
	realmtest.ReadUntil(t, wsBy, "the bystander's pong", realmtest.IsType("pong"))
}
