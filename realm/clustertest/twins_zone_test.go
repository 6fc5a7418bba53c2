package clustertest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestTwinCommandSeesPresenceOnAnotherNode: an operator connected to one
// realm node stands in the control room; a command through the other
// node is decided with that zone, learnt from the cluster's presence.
func TestTwinCommandSeesPresenceOnAnotherNode(t *testing.T) {
	a, b := nodes.TwoOnCluster(t)
	ada := realmtest.NewOperator(t, a, "ada", "operator")
	// The role was given through node a; node b decides her walk into the
	// control room with what its avatar cache says, which follows the
	// change feed.
	waitForRoles(t, b, ada.ID, "operator")
	at := func(node *realm.Realm) *realmtest.Client { return nodes.Client(t, node).With(ada.Sess.Token) }
	w := realmtest.JoinFoundryAs(t, b, ada.Sess.Token, ada.ID, ada.Sess.Session.ID)
	w.Walk("walkway", b, a)
	status, p, _, _ := at(a).Command(realmtest.BeltPath, "x-1", map[string]any{"op": "set", "value": 1})
	if status != 403 || !strings.Contains(p.Detail, "the realm sees you in zone walkway") {
		t.Fatalf("command through node a from the walkway on node b = %d %q, want a policy deny naming the walkway", status, p.Detail)
	}
	w.Walk("control-room", b, a)
	status, p, _, _ = at(a).Command(realmtest.BeltPath, "x-2", map[string]any{"op": "set", "value": 1})
	// The policy allows it; whether a gateway then answers depends on the
	// cluster's gateways, not on presence.
	if strings.Contains(p.Detail, "policy:") || strings.Contains(p.Detail, "zone_mismatch") {
		t.Fatalf("command through node a from the control room on node b = %d %q, want the policy to allow it", status, p.Detail)
	}
}

// waitForRoles waits until node reads the avatar with roles, as its
// request paths read it (through its cache, which a change feed keeps).
func waitForRoles(tb testing.TB, node *realm.Realm, avatarID string, roles ...string) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		av, err := realmtest.Probe(node).Avatars.GetCached(context.Background(), avatarID)
		if err == nil && slices.Equal(av.Roles, roles) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node never read avatar %s with roles %v (last: %+v, %v)", avatarID, roles, av, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
