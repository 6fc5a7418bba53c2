package realm

import (
	"context"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// Avatars present in the foundry through a clients/vr SDK connection, as
// a headset would be (realmtest.Walker).
var (
	joinFoundryAs = realmtest.JoinFoundryAs
	standIn       = realmtest.StandIn
)

// TestTwinCommandUsesObservedZone: the zone of a command is where the
// realm's presence sees the operator, whatever the request says.
func TestTwinCommandUsesObservedZone(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator")
	set := func(v float64) map[string]any { return map[string]any{"op": "set", "value": v, "reason": "test"} }
	claim := func(v float64, zone string) map[string]any {
		b := set(v)
		b["zone"] = zone
		return b
	}
	refused := func(key string, body any, detail ...string) {
		t.Helper()
		status, p, _, _ := ada.Command(beltPath, key, body)
		if status != 403 {
			t.Fatalf("%s: command = %d %q, want 403", key, status, p.Detail)
		}
		for _, d := range detail {
			if !strings.Contains(p.Detail, d) {
				t.Fatalf("%s: command refused with %q, want it to mention %q", key, p.Detail, d)
			}
		}
	}

	// In no scene: claiming the control room changes nothing.
	refused("absent-1", set(1), "policy:", "not in scene")
	refused("absent-2", claim(1, "control-room"), "zone_mismatch", "not in scene")

	// In the scene, on the walkway: neither beside the belt nor in the
	// control room.
	w := standIn(t, r, ada, "walkway")
	refused("walkway-1", set(1), "policy:", "the realm sees you in zone walkway")
	refused("walkway-2", claim(1, "control-room"), "zone_mismatch", "zone control-room", "walkway")

	// Beside the belt: allowed, and the answer says where the realm saw
	// the operator. A true assertion is accepted.
	w.Walk("conveyor-line")
	status, p, ans, _ := ada.Command(beltPath, "line-1", set(1.5))
	if status != 200 || ans.Status != command.StatusDone || ans.Command.Zone != "conveyor-line" {
		t.Fatalf("command beside the belt = %d %+v %+v, want done from conveyor-line", status, p, ans.Command)
	}
	if status, p, _, _ := ada.Command(beltPath, "line-2", claim(1, "conveyor-line")); status != 200 {
		t.Fatalf("command asserting the zone the realm sees = %d %+v, want 200", status, p)
	}

	// Out of every zone, then disconnected: refused again.
	w.Walk("")
	refused("out-1", set(1), "in no zone")
	w.Close()
	eventually(t, "the realm to see the avatar leave", func() bool { return !r.live.WhereIs("foundry", ada.ID, ada.Sess.Session.ID).Present })
	refused("gone-1", set(1), "not in scene")

	// The realm tells the console where it sees the avatar.
	var me struct {
		Present bool   `json:"present"`
		Zone    string `json:"zone"`
		Where   string `json:"where"`
	}
	w = standIn(t, r, ada, "control-room")
	ada.Must("GET", "/v1/scenes/foundry/me", nil, &me)
	if !me.Present || me.Zone != "control-room" || !strings.Contains(me.Where, "control-room") {
		t.Fatalf("GET /v1/scenes/foundry/me = %+v, want present in control-room", me)
	}
	if status, p, _, _ := ada.Command(beltPath, "room-1", set(1)); status != 200 {
		t.Fatalf("command from the control room = %d %+v, want 200", status, p)
	}
	_ = w
}

// TestCriticalCommandRechecksZoneAtApproval: an approved command is
// decided again where the realm sees its requester when it is approved.
func TestCriticalCommandRechecksZoneAtApproval(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator", "supervisor")
	grace := newOperator(t, r, "grace", "supervisor")
	w := standIn(t, r, ada, "control-room")
	body := map[string]any{"op": "set", "value": 40}
	hash := ada.Digest(pressurePath, "p-away", body)
	if status, _ := ada.StepUp(ada.Auth, hash); status != 200 {
		t.Fatal("requester step-up failed")
	}
	status, p, ans, _ := ada.Command(pressurePath, "p-away", body)
	if status != 202 || ans.Command.Zone != "control-room" {
		t.Fatalf("critical command = %d %+v %+v, want 202 from the control room", status, p, ans.Command)
	}
	w.Walk("walkway")
	if status, _ := grace.StepUp(grace.Auth, hash); status != 200 {
		t.Fatal("approver step-up failed")
	}
	status, p = grace.Call("POST", "/v1/approvals/"+hash+"/approve", nil, nil)
	if status != 403 || !strings.Contains(p.Detail, "the realm sees you in zone walkway") {
		t.Fatalf("approval while the requester is on the walkway = %d %q, want a policy deny naming the walkway", status, p.Detail)
	}
}

// TestDemotedOperatorLosesZoneAccess: roles taken from a connected
// operator apply at its next zone step, not at its next connection.
func TestDemotedOperatorLosesZoneAccess(t *testing.T) {
	r := startLocalRealm(t)
	ada := newOperator(t, r, "ada", "operator")
	w := standIn(t, r, ada, "press-bay")
	w.Walk("lobby")

	if err := r.avatars.SetRoles(context.Background(), ada.ID, nil); err != nil {
		t.Fatal(err)
	}
	// The avatar read every decision makes follows the change feed.
	eventually(t, "the node's avatar read to show the demotion", func() bool {
		av, err := r.avatars.GetCached(context.Background(), ada.ID)
		return err == nil && len(av.Roles) == 0
	})
	e := w.WalkDenied("press-bay")
	if !strings.Contains(e.Reason, "press-bay") {
		t.Fatalf("denial = %q", e.Reason)
	}
	w.WalkDenied("control-room")
	// Open zones stay open.
	w.Walk("walkway")
}
