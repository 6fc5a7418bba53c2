package realm

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// Operators and their twin commands (realmtest).
type operator = realmtest.Operator

var (
	newOperator   = realmtest.NewOperator
	waitTwinsLive = realmtest.WaitTwinsLive
)

const (
	beltPath     = realmtest.BeltPath
	ramPath      = realmtest.RamPath
	pressurePath = realmtest.PressurePath
)

func TestTwinCommandJourney(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator")
	visitor := newOperator(t, r, "vic", "visitor")

	var list struct {
		Twins []twins.TwinView `json:"twins"`
	}
	ada.Must("GET", "/v1/twins", nil, &list)
	if len(list.Twins) != 3 || list.Twins[0].Gateway == "" {
		t.Fatalf("GET /v1/twins = %+v, want the foundry's 3 twins with their gateways", list.Twins)
	}

	// The zone of a command is where the realm sees the operator: ada
	// stands beside the belt, through an SDK connection. A request may
	// still name a zone, as an assertion that must match.
	w := standIn(t, r, ada, "conveyor-line")
	set := func(v float64, zone string) map[string]any {
		b := map[string]any{"op": "set", "value": v, "reason": "test"}
		if zone != "" {
			b["zone"] = zone
		}
		return b
	}
	// Refusals before any grant, each with its status and reason.
	cases := []struct {
		name   string
		client *apiClient
		path   string
		key    string
		body   any
		status int
		detail string
	}{
		{"no idempotency key", ada.Client, beltPath, "", set(1, "conveyor-line"), 400, "Idempotency-Key"},
		{"malformed", ada.Client, beltPath, "k-mal", map[string]any{"op": "fly"}, 400, "malformed"},
		{"value as a string", ada.Client, beltPath, "k-nan", map[string]any{"op": "set", "value": "NaN"}, 400, "malformed"},
		{"unknown twin", ada.Client, "/v1/twins/press-9/actuators/ram/commands", "k-tw", set(1, ""), 404, "unknown_twin"},
		{"unknown actuator", ada.Client, "/v1/twins/press-1/actuators/arm/commands", "k-ac", set(1, ""), 404, "unknown_actuator"},
		{"outside the envelope", ada.Client, beltPath, "k-env", set(3, "conveyor-line"), 422, "out_of_range"},
		{"claims another zone", ada.Client, beltPath, "k-zone", set(1, "lobby"), 403, "zone_mismatch"},
		{"not an operator", visitor.Client, beltPath, "k-vis", set(1, ""), 403, "policy"},
		{"high risk without step-up", ada.Client, ramPath, "k-ram", set(10, ""), 403, "step-up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, p, _, _ := c.client.Command(c.path, c.key, c.body)
			if status != c.status || !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("POST %s = %d %q, want %d mentioning %q", c.path, status, p.Detail, c.status, c.detail)
			}
		})
	}

	// A low-risk command goes through with the gateway's signed answer.
	status, p, ans, _ := ada.Command(beltPath, "belt-1", set(1.5, "conveyor-line"))
	if status != 200 || ans.Status != command.StatusDone || ans.Ack == nil || ans.Ack.Target != 1.5 || ans.Grant == nil {
		t.Fatalf("belt command = %d %+v %+v, want done with target 1.5", status, p, ans)
	}
	if want, _ := r.twins.Gateways().Key("conveyor-1"); ans.Ack.Signer != want.Hex() {
		t.Fatalf("ack signer = %s, want the conveyor gateway's key %s", ans.Ack.Signer, want.Hex())
	}
	// Retrying with the same key replays the answer; reusing the key for
	// another command is refused as unprocessable (422).
	status, _, again, hdr := ada.Command(beltPath, "belt-1", set(1.5, "conveyor-line"))
	if status != 200 || hdr.Get("Idempotent-Replayed") != "true" || again.Ack.Signature != ans.Ack.Signature {
		t.Fatalf("retry = %d replayed=%q, want the same signed answer", status, hdr.Get("Idempotent-Replayed"))
	}
	if status, p, _, _ := ada.Command(beltPath, "belt-1", set(2, "conveyor-line")); status != 422 || !strings.HasSuffix(p.Type, "/idempotency-key-reused") {
		t.Fatalf("key reused for another command = %d %+v, want 422 idempotency-key-reused", status, p)
	}

	// High risk: from the control room, step up for the command's hash,
	// then it goes through.
	w.Walk("control-room")
	body := set(20, "")
	hash := ada.Digest(ramPath, "ram-1", body)
	if status, p := ada.StepUp(ada.Auth, hash); status != 200 {
		t.Fatalf("step-up = %d %+v", status, p)
	}
	if status, p, ans, _ := ada.Command(ramPath, "ram-1", body); status != 200 || ans.Status != command.StatusDone || ans.Command.Hash != hash {
		t.Fatalf("ram command after step-up = %d %+v %+v, want done", status, p, ans)
	}

	// The audit log holds the decisions, denies with their reasons.
	eventually(t, "the audit log to show a deny and an actuation", func() bool {
		evs := r.view.Events(audit.Query{Limit: 500})
		var deny, actuate bool
		for _, ev := range evs {
			deny = deny || ev.Action == "CommandActuator" && ev.Outcome == audit.Deny
			actuate = actuate || ev.Action == "CommandActuator" && ev.Outcome == audit.Allow && ev.Signals["result"] == "done"
		}
		return deny && actuate
	})
}

func TestCriticalCommandNeedsASecondOperator(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator", "supervisor")
	grace := newOperator(t, r, "grace", "supervisor")
	standIn(t, r, ada, "control-room")
	body := map[string]any{"op": "set", "value": 40}
	hash := ada.Digest(pressurePath, "p-1", body)
	if status, _ := ada.StepUp(ada.Auth, hash); status != 200 {
		t.Fatal("requester step-up failed")
	}
	status, p, ans, _ := ada.Command(pressurePath, "p-1", body)
	if status != 202 || ans.Status != command.StatusPendingApproval || ans.Approval == nil {
		t.Fatalf("critical command = %d %+v %+v, want 202 pending approval", status, p, ans)
	}
	approve := "/v1/approvals/" + hash + "/approve"

	// The requester cannot approve their own command, even with a step-up.
	if status, _ := ada.StepUp(ada.Auth, hash); status != 200 {
		t.Fatal("step-up failed")
	}
	if status, p := ada.Call("POST", approve, nil, nil); status != 403 || !strings.Contains(p.Detail, "second operator") {
		t.Fatalf("self-approval = %d %q, want 403", status, p.Detail)
	}
	// The approver needs their own step-up bound to the command.
	if status, p := grace.Call("POST", approve, nil, nil); status != 403 || !strings.Contains(p.Detail, "step-up") {
		t.Fatalf("approval without step-up = %d %q, want 403 asking for a step-up", status, p.Detail)
	}
	var pending struct {
		Approvals []map[string]any `json:"approvals"`
	}
	grace.Must("GET", "/v1/approvals", nil, &pending)
	if len(pending.Approvals) != 1 {
		t.Fatalf("GET /v1/approvals = %+v, want the one pending command", pending)
	}
	if status, _ := grace.StepUp(grace.Auth, hash); status != 200 {
		t.Fatal("approver step-up failed")
	}
	var done struct {
		Approval command.ApprovalView `json:"approval"`
		Answer   command.Answer       `json:"answer"`
	}
	grace.Must("POST", approve, nil, &done)
	if done.Answer.Status != command.StatusDone || done.Approval.Approver != grace.ID {
		t.Fatalf("approval = %+v, want the command done, approved by grace", done)
	}
	if msg := done.Answer.Grant.TypedData.Message["approvers"]; !strings.Contains(toJSON(msg), grace.ID) {
		t.Fatalf("grant approvers = %v, want grace", msg)
	}
	if status, _ := grace.Call("POST", approve, nil, nil); status != 409 {
		t.Fatalf("second approval = %d, want 409", status)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTwinFeedStreamsOutcomes(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator")
	url := "ws" + strings.TrimPrefix(r.URL(), "http") + "/v1/twins/feed"
	ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + ada.Token}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var hello map[string]any
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&hello); err != nil || hello["type"] != "twins" {
		t.Fatalf("first feed message = %v, %v; want twins", hello, err)
	}
	standIn(t, r, ada, "conveyor-line")
	if status, p, _, _ := ada.Command(beltPath, "feed-1", map[string]any{"op": "set", "value": 1}); status != 200 {
		t.Fatalf("command = %d %+v", status, p)
	}
	for {
		var m twins.Message
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("feed: %v", err)
		}
		if m.Type == "outcome" && m.Outcome != nil && m.Outcome.Status == command.StatusDone {
			return
		}
	}
}

// TestRevokedSessionReachesGateways signs out and waits until every
// simulated gateway refuses the session.
func TestRevokedSessionReachesGateways(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator")
	ada.Must("POST", "/v1/sessions/logout", nil, nil)
	eventually(t, "every gateway to refuse the revoked session", func() bool {
		for _, g := range r.twins.Gateways().Simulated() {
			if !g.Revoked(ada.Sess.Session.ID) {
				return false
			}
		}
		return true
	})
	if n := len(r.twins.Gateways().Simulated()); n != 3 {
		t.Fatalf("%d simulated gateways, want 3", n)
	}
}

// TestUndeliveredTwinCommandIsAudited stops the conveyor's gateway: the command
// is allowed, its grant goes nowhere, and its one audit event still records
// the decision, as a deny with the result "undelivered".
func TestUndeliveredTwinCommandIsAudited(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator")
	conveyor, _ := r.twins.Gateways().Key("conveyor-1")
	for _, g := range r.twins.Gateways().Simulated() {
		if g.Address() == conveyor {
			g.Close()
		}
	}
	standIn(t, r, ada, "conveyor-line")
	body := map[string]any{"op": "set", "value": 1}
	hash := ada.Digest(beltPath, "lost-1", body)
	if status, p, _, _ := ada.Command(beltPath, "lost-1", body); status < 400 || !strings.Contains(p.Detail, "no_gateway") {
		t.Fatalf("command with no gateway = %d %+v, want a no_gateway problem", status, p)
	}
	var ev audit.Event
	eventually(t, "the audit log to record the undelivered command", func() bool {
		for _, e := range r.view.Events(audit.Query{Limit: 500}) {
			if e.Action == "CommandActuator" && e.Signals["command"] == hash {
				ev = e
				return true
			}
		}
		return false
	})
	if ev.Outcome != audit.Deny || ev.Signals["result"] != "undelivered" || ev.Signals["decision"] != "allow" || len(ev.Policies) == 0 {
		t.Fatalf("audit event = %+v, want a deny with decision allow, its policies and result undelivered", ev)
	}
}
