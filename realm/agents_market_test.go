package realm

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// The market's agents (realmtest).
var (
	newTrader     = realmtest.NewTrader
	newTraderWith = realmtest.NewTraderWith
	custodialWith = realmtest.CustodialWith
	verifyReceipt = realmtest.VerifyReceipt
	agentTransfer = realmtest.AgentTransfer
)

// TestAgentTransfers: an agent moves its owner's gems within its
// delegation, with a receipt that verifies and its chain in the audit;
// out of scope and over its limits it is refused with the reason; above
// the auto-approval value the transfer waits, the owner sees it on the
// realm WebSocket, and it runs once the owner approves it with a step-up
// bound to it, decided again then; the owner may reject, the agent may
// withdraw; a delegation revoked while its action waits fails it.
func TestAgentTransfers(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	ownerID := ada.Sess.Avatar["id"].(string)
	custodial := custodialWith(t, r, ada, 2000)
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	ag, chain := newTrader(t, r, ownerID)
	live := dialLive(t, r, ada.Sess.Token)
	defer live.Close()

	var tr transferReply
	if a := ag.Post("POST", "/v1/assets/transfers", agentTransfer("gems", 50, custodial, bob, 1), &tr); a.Status != http.StatusCreated {
		t.Fatalf("agent's transfer of 50 = %d %+v", a.Status, a.Problem)
	}
	verifyReceipt(t, r, tr.Receipt)
	if got, _ := balanceOf(r, "gems", bob); got != 50 {
		t.Fatalf("bob holds %d gems, want 50", got)
	}
	eventually(t, "the agent's transfer in the audit with its chain", func() bool {
		for _, ev := range r.view.Events(audit.Query{Actor: chain.AgentID(), Limit: 100}) {
			if ev.Action == "TransferAsset" && ev.Outcome == audit.Allow && ev.Signals["chain"] == chain.Path() && ev.Signals["owner"] == ownerID {
				return true
			}
		}
		return false
	})

	// Out of its delegation: another collection, over the per-transfer
	// value, a person's trade route.
	mint(t, r, "relics", "cup", custodial, 0)
	wantAgentRefusal(t, "a transfer of relics", ag.Post("POST", "/v1/assets/transfers", map[string]any{"intent": intent("relics", "cup", 1, custodial, bob, 2, deadlineIn(time.Hour))}, nil), 403, edge.TypeAgentForbidden, "out-of-scope")
	wantAgentRefusal(t, "a transfer of 501", ag.Post("POST", "/v1/assets/transfers", agentTransfer("gems", 501, custodial, bob, 2), nil), 403, edge.TypeAgentForbidden, "over-limit")
	wantAgentRefusal(t, "a trade", ag.Post("POST", "/v1/assets/trades", map[string]any{}, nil), 403, edge.TypePeopleOnly, "only a person")

	// Above the auto-approval value: it waits.
	var first approval.View
	a := ag.Post("POST", "/v1/assets/transfers", agentTransfer("gems", 300, custodial, bob, 2), &first)
	if a.Status != http.StatusAccepted || first.State != approval.StatePending || a.Header.Get("Location") != "/v1/agents/approvals/"+first.ID {
		t.Fatalf("transfer of 300 = %d %s, Location %q, %+v", a.Status, a.Body, a.Header.Get("Location"), a.Problem)
	}
	if got, _ := balanceOf(r, "gems", bob); got != 50 {
		t.Fatalf("a waiting transfer moved gems: bob holds %d", got)
	}
	wantLiveApproval(t, live, first.ID, approval.StatePending)
	var second approval.View
	if a := ag.Post("POST", "/v1/assets/transfers", agentTransfer("gems", 300, custodial, bob, 3), &second); a.Status != http.StatusAccepted {
		t.Fatalf("second transfer of 300 = %d %+v", a.Status, a.Problem)
	}
	var list struct {
		Approvals []approval.View `json:"approvals"`
	}
	ada.C.Must("GET", "/v1/agents/approvals", nil, &list)
	if len(list.Approvals) != 2 || list.Approvals[0].Chain != chain.Path() || list.Approvals[0].Action.Value != "300" {
		t.Fatalf("the owner's queue: %+v", list.Approvals)
	}
	wantAgentRefusal(t, "an agent approving", ag.Post("POST", "/v1/agents/approvals/"+first.ID+"/approve", nil, nil), 403, edge.TypePeopleOnly, "only a person")

	// Approving needs the owner's step-up bound to that action.
	if code, p := ada.C.Call("POST", "/v1/agents/approvals/"+first.ID+"/approve", nil, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, first.Digest) {
		t.Fatalf("approve without a step-up = %d %+v", code, p)
	}
	var done approval.View
	if code, p := ada.C.StepUp(ada.Auth, first.Digest); code != 200 {
		t.Fatalf("step-up = %d %+v", code, p)
	}
	ada.C.Must("POST", "/v1/agents/approvals/"+first.ID+"/approve", nil, &done)
	if done.State != approval.StateDone || len(done.Result) == 0 {
		t.Fatalf("approved: %+v", done)
	}
	var res transferReply
	if err := json.Unmarshal(done.Result, &res); err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, r, res.Receipt)
	if got, _ := balanceOf(r, "gems", bob); got != 350 {
		t.Fatalf("bob holds %d gems after the approval, want 350", got)
	}
	var polled approval.View
	if a := ag.Post("GET", "/v1/agents/approvals/"+first.ID, nil, &polled); a.Status != 200 || polled.State != approval.StateDone || !bytes.Equal(polled.Result, done.Result) {
		t.Fatalf("the agent polls = %d %+v", a.Status, polled)
	}
	wantLiveApproval(t, live, first.ID, approval.StateDone)

	// The second was fine when asked, but the day's 600 is spent now: the
	// fresh decision at execution refuses it.
	if code, p := ada.C.StepUp(ada.Auth, second.Digest); code != 200 {
		t.Fatalf("step-up = %d %+v", code, p)
	}
	var failed approval.View
	ada.C.Must("POST", "/v1/agents/approvals/"+second.ID+"/approve", nil, &failed)
	if failed.State != approval.StateFailed || failed.Problem == nil || !strings.Contains(failed.Problem.Detail, "over-limit") {
		t.Fatalf("approved over the day's limit: %+v %+v", failed, failed.Problem)
	}
	if code, _ := ada.C.Call("POST", "/v1/agents/approvals/"+second.ID+"/approve", nil, nil); code != http.StatusConflict {
		t.Fatalf("approving twice = %d, want 409", code)
	}

	// Rejected by the owner; withdrawn by the agent.
	ag2, chain2 := newTrader(t, r, ownerID)
	var third, fourth approval.View
	ag2.Post("POST", "/v1/assets/transfers", agentTransfer("gems", 200, custodial, bob, 4), &third)
	ag2.Post("POST", "/v1/assets/transfers", agentTransfer("gems", 200, custodial, bob, 5), &fourth)
	var rejected approval.View
	ada.C.Must("POST", "/v1/agents/approvals/"+third.ID+"/reject", nil, &rejected)
	if rejected.State != approval.StateRejected {
		t.Fatalf("rejected: %+v", rejected)
	}
	if a := ag.Post("DELETE", "/v1/agents/approvals/"+fourth.ID, nil, nil); a.Status != http.StatusNotFound {
		t.Fatalf("another agent withdraws it = %d", a.Status)
	}
	var cancelled approval.View
	if a := ag2.Post("DELETE", "/v1/agents/approvals/"+fourth.ID, nil, &cancelled); a.Status != 200 || cancelled.State != approval.StateCancelled {
		t.Fatalf("the agent withdraws it = %d %+v", a.Status, cancelled)
	}

	// Revoked while it waits: approving it runs nothing.
	var fifth approval.View
	if a := ag2.Post("POST", "/v1/assets/transfers", agentTransfer("gems", 200, custodial, bob, 6), &fifth); a.Status != http.StatusAccepted {
		t.Fatalf("transfer of 200 = %d %+v", a.Status, a.Problem)
	}
	// (Issued by the test, not through the API: revoked as the API does.)
	if err := r.agents.Revocations().Revoke(context.Background(), chain2.Root().ID, ownerID, "test"); err != nil {
		t.Fatal(err)
	}
	if code, p := ada.C.StepUp(ada.Auth, fifth.Digest); code != 200 {
		t.Fatalf("step-up = %d %+v", code, p)
	}
	var revoked approval.View
	ada.C.Must("POST", "/v1/agents/approvals/"+fifth.ID+"/approve", nil, &revoked)
	if revoked.State != approval.StateFailed || revoked.Problem == nil || revoked.Problem.Type != edge.ProblemBase+edge.TypeDelegationRevoked {
		t.Fatalf("approved after its delegation was revoked: %+v %+v", revoked, revoked.Problem)
	}
	if got, _ := balanceOf(r, "gems", bob); got != 350 {
		t.Fatalf("bob holds %d gems at the end, want 350", got)
	}
}

// wantLiveApproval reads the owner's realm WebSocket until the action id
// arrives in state.
func wantLiveApproval(t testing.TB, ws *websocket.Conn, id, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		_ = ws.SetReadDeadline(deadline)
		var m struct {
			Type     string        `json:"type"`
			Approval approval.View `json:"approval"`
		}
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for %s %s on the realm WebSocket: %v", id, state, err)
		}
		if m.Type == "agent-approval" && m.Approval.ID == id && m.Approval.State == state {
			return
		}
	}
	t.Fatalf("no agent-approval of %s in state %s on the realm WebSocket", id, state)
}
