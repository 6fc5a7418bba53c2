package realm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// traderLimits are the delegation of the market tests' trading agent:
// 500 per transfer, 600 a day, above 100 its owner approves.
var traderLimits = agents.Limits{TransferValue: 500, DailyValue: 600, AutoApproveValue: 100, MaxRisk: agents.RiskLow}

// newTrader is an agent of owner that may transfer the owner's gems,
// with traderLimits, and its client.
func newTrader(t testing.TB, r *Realm, owner string) (*agentClient, *agents.Chain) {
	t.Helper()
	return newTraderWith(t, r, owner, traderLimits, "gems")
}

// newTraderWith is an agent of owner that may transfer the owner's assets
// of collection, within limits.
func newTraderWith(t testing.TB, r *Realm, owner string, limits agents.Limits, collection string) (*agentClient, *agents.Chain) {
	t.Helper()
	key := newAgentKey(t)
	signer := agents.KeySigner{Key: r.keys.Active}
	iat := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	d, err := agents.PrepareRoot(agents.Grant{
		Owner: owner, Agent: agents.EncodeAgentKey(key.Public().(ed25519.PublicKey)),
		Actions:   []string{agents.ActionTransferAsset},
		Resources: []agents.Resource{{Kind: agents.KindCollection, ID: collection}},
		Limits:    limits, IssuedAt: iat, ExpiresAt: iat.Add(time.Hour),
	}, signer.Address())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return &agentClient{t: t, base: r.URL(), key: key, token: c.Token(), hc: &http.Client{Timeout: 20 * time.Second}}, c
}

// post sends a JSON body with a fresh proof (and again with the node's
// nonce when asked for one).
func (c *agentClient) post(method, path string, body any, out any) agentAnswer {
	c.t.Helper()
	data, _ := json.Marshal(body)
	for range 2 {
		req, err := http.NewRequest(method, c.base+path, bytes.NewReader(data))
		if err != nil {
			c.t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "DPoP "+c.token)
		req.Header.Set("DPoP", c.proofBy(c.key, method, path))
		resp, err := c.hc.Do(req)
		if err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a := agentAnswer{status: resp.StatusCode, header: resp.Header, body: raw}
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			c.nonce = n
		}
		if a.status >= 300 {
			_ = json.Unmarshal(raw, &a.problem)
			if a.status == http.StatusUnauthorized && a.problem.Type == edge.ProblemBase+edge.TypeDPoPNonce {
				continue
			}
		} else if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				c.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
			}
		}
		return a
	}
	c.t.Fatalf("%s %s: still asked for a nonce after sending one", method, path)
	return agentAnswer{}
}

// custodialWith gives the market user a custodial address holding gems.
func custodialWith(t testing.TB, r *Realm, u *marketUser, gems uint64) common.Address {
	t.Helper()
	var w struct {
		Custodial struct {
			Address string `json:"address"`
		} `json:"custodial"`
	}
	u.C.Must("POST", "/v1/assets/wallet/custodial", nil, &w)
	a := common.HexToAddress(w.Custodial.Address)
	mint(t, r, "gems", "", a, gems)
	return a
}

// verifyReceipt checks a receipt as anyone can offline: its typed data
// hashes (go-ethereum's EIP-712) to its digest, and its signature
// recovers the realm's signer.
func verifyReceipt(t testing.TB, r *Realm, doc assets.ReceiptDocument) {
	t.Helper()
	raw, _ := json.Marshal(doc.Receipt)
	var td apitypes.TypedData
	if err := json.Unmarshal(raw, &td); err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil || common.BytesToHash(h).Hex() != doc.Digest {
		t.Fatalf("receipt digest %s, hash by apitypes %x (%v)", doc.Digest, h, err)
	}
	sig := common.FromHex(doc.Signature)
	if len(sig) != 65 {
		t.Fatalf("receipt signature %q", doc.Signature)
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(h, sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != r.market.Ledger().Signer() {
		t.Fatalf("receipt signed by %v (%v), want the realm's signer %s", pub, err, r.market.Ledger().Signer().Hex())
	}
}

// agentTransfer is the body of an agent's transfer from the owner's
// custodial address: no signature, the realm signs once it is decided.
func agentTransfer(coll string, amount uint64, from, to common.Address, nonce uint64) map[string]any {
	return map[string]any{"intent": intent(coll, "", amount, from, to, nonce, deadlineIn(time.Hour))}
}

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
	if a := ag.post("POST", "/v1/assets/transfers", agentTransfer("gems", 50, custodial, bob, 1), &tr); a.status != http.StatusCreated {
		t.Fatalf("agent's transfer of 50 = %d %+v", a.status, a.problem)
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
	wantAgentRefusal(t, "a transfer of relics", ag.post("POST", "/v1/assets/transfers", map[string]any{"intent": intent("relics", "cup", 1, custodial, bob, 2, deadlineIn(time.Hour))}, nil), 403, edge.TypeAgentForbidden, "out-of-scope")
	wantAgentRefusal(t, "a transfer of 501", ag.post("POST", "/v1/assets/transfers", agentTransfer("gems", 501, custodial, bob, 2), nil), 403, edge.TypeAgentForbidden, "over-limit")
	wantAgentRefusal(t, "a trade", ag.post("POST", "/v1/assets/trades", map[string]any{}, nil), 403, edge.TypePeopleOnly, "only a person")

	// Above the auto-approval value: it waits.
	var first approval.View
	a := ag.post("POST", "/v1/assets/transfers", agentTransfer("gems", 300, custodial, bob, 2), &first)
	if a.status != http.StatusAccepted || first.State != approval.StatePending || a.header.Get("Location") != "/v1/agents/approvals/"+first.ID {
		t.Fatalf("transfer of 300 = %d %s, Location %q, %+v", a.status, a.body, a.header.Get("Location"), a.problem)
	}
	if got, _ := balanceOf(r, "gems", bob); got != 50 {
		t.Fatalf("a waiting transfer moved gems: bob holds %d", got)
	}
	wantLiveApproval(t, live, first.ID, approval.StatePending)
	var second approval.View
	if a := ag.post("POST", "/v1/assets/transfers", agentTransfer("gems", 300, custodial, bob, 3), &second); a.status != http.StatusAccepted {
		t.Fatalf("second transfer of 300 = %d %+v", a.status, a.problem)
	}
	var list struct {
		Approvals []approval.View `json:"approvals"`
	}
	ada.C.Must("GET", "/v1/agents/approvals", nil, &list)
	if len(list.Approvals) != 2 || list.Approvals[0].Chain != chain.Path() || list.Approvals[0].Action.Value != "300" {
		t.Fatalf("the owner's queue: %+v", list.Approvals)
	}
	wantAgentRefusal(t, "an agent approving", ag.post("POST", "/v1/agents/approvals/"+first.ID+"/approve", nil, nil), 403, edge.TypePeopleOnly, "only a person")

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
	if a := ag.post("GET", "/v1/agents/approvals/"+first.ID, nil, &polled); a.status != 200 || polled.State != approval.StateDone || !bytes.Equal(polled.Result, done.Result) {
		t.Fatalf("the agent polls = %d %+v", a.status, polled)
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
	ag2.post("POST", "/v1/assets/transfers", agentTransfer("gems", 200, custodial, bob, 4), &third)
	ag2.post("POST", "/v1/assets/transfers", agentTransfer("gems", 200, custodial, bob, 5), &fourth)
	var rejected approval.View
	ada.C.Must("POST", "/v1/agents/approvals/"+third.ID+"/reject", nil, &rejected)
	if rejected.State != approval.StateRejected {
		t.Fatalf("rejected: %+v", rejected)
	}
	if a := ag.post("DELETE", "/v1/agents/approvals/"+fourth.ID, nil, nil); a.status != http.StatusNotFound {
		t.Fatalf("another agent withdraws it = %d", a.status)
	}
	var cancelled approval.View
	if a := ag2.post("DELETE", "/v1/agents/approvals/"+fourth.ID, nil, &cancelled); a.status != 200 || cancelled.State != approval.StateCancelled {
		t.Fatalf("the agent withdraws it = %d %+v", a.status, cancelled)
	}

	// Revoked while it waits: approving it runs nothing.
	var fifth approval.View
	if a := ag2.post("POST", "/v1/assets/transfers", agentTransfer("gems", 200, custodial, bob, 6), &fifth); a.status != http.StatusAccepted {
		t.Fatalf("transfer of 200 = %d %+v", a.status, a.problem)
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

// TestAgentApprovalTwoNodes: two realm nodes on a 3-node NATS cluster.
// An agent's transfer waits on node A; its owner, signed in on both
// nodes, approves it on both at once, each with its own step-up; it runs
// exactly once, and the other approval is told it is no longer pending.
func TestAgentApprovalTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and two realms")
	}
	a, b := twoNodesWith(t, Config{ScenesDir: marketScenes})
	ada := newMarketUser(t, a, "ada")
	ownerID := ada.Sess.Avatar["id"].(string)
	custodial := custodialWith(t, a, ada, 1000)
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	ag, _ := newTrader(t, a, ownerID)

	var p approval.View
	if ans := ag.post("POST", "/v1/assets/transfers", agentTransfer("gems", 300, custodial, bob, 1), &p); ans.status != http.StatusAccepted {
		t.Fatalf("transfer of 300 on node A = %d %+v", ans.status, ans.problem)
	}
	// The owner signed in twice, on each node, and confirms the action
	// with a step-up in each session: both approvals pass their step-up
	// and race for the record, on two nodes.
	signIn := newClient(t, b)
	signIn.Origin = a.URL() // node B serves node A's origin
	onB := signIn.With(signIn.Login(ada.Auth, "ada").Token)
	onA := ada.C
	for _, c := range []*apiClient{onA, onB} {
		if code, prob := c.StepUp(ada.Auth, p.Digest); code != 200 {
			t.Fatalf("step-up = %d %+v", code, prob)
		}
	}
	codes := make([]int, 2)
	problems := make([]string, 2)
	var wg sync.WaitGroup
	for i, c := range []*apiClient{onA, onB} {
		wg.Go(func() {
			var v approval.View
			code, prob := c.Call("POST", "/v1/agents/approvals/"+p.ID+"/approve", nil, &v)
			codes[i], problems[i] = code, prob.Type
			if code == 200 && v.State != approval.StateDone {
				t.Errorf("approval %d answered %+v", i, v)
			}
		})
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == http.StatusConflict || codes[0] == http.StatusConflict && codes[1] == 200) ||
		!slices.Contains(problems, edge.ProblemBase+"approval-not-pending") {
		t.Fatalf("approvals on both nodes answered %v %v: want one 200 and one 409 approval-not-pending", codes, problems)
	}
	var fromA, fromB approval.View
	ag.post("GET", "/v1/agents/approvals/"+p.ID, nil, &fromA)
	onB.Must("GET", "/v1/agents/approvals/"+p.ID, nil, &fromB)
	if fromA.State != approval.StateDone || fromB.State != approval.StateDone || !bytes.Equal(fromA.Result, fromB.Result) {
		t.Fatalf("node A reads %s, node B %s", fromA.State, fromB.State)
	}
	for _, n := range []*Realm{a, b} {
		eventually(t, "both nodes to see 300 gems moved once", func() bool {
			got, _ := balanceOf(n, "gems", bob)
			left, _ := balanceOf(n, "gems", custodial)
			return got == 300 && left == 700
		})
	}
}
