package clustertest

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/approvals"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// settleWait bounds the wait for another node to settle an action: the
// runner's lease (about 20 s) and a few passes of the reconciler.
const settleWait = 90 * time.Second

// stopApprovals makes node n stop while it runs the given approved
// actions: after the run (true) or before it (false).
func stopApprovals(n *realm.Realm, at map[string]bool) {
	realmtest.Probe(n).StopApprovalAt(func(p approval.Pending, ran bool) bool {
		after, ok := at[p.ID]
		return ok && after == ran
	})
}

// approveOn has owner approve action p on its client c (a step-up bound
// to the action's digest, then the approval) and returns the record the
// node answers.
func approveOn(t *testing.T, c *realmtest.Client, p approval.View, stepUp func(digest string) (int, string)) approval.View {
	t.Helper()
	if code, prob := stepUp(p.Digest); code != http.StatusOK {
		t.Fatalf("step-up for %s = %d %s", p.ID, code, prob)
	}
	var v approval.View
	if code, prob := c.Call("POST", "/v1/agents/approvals/"+p.ID+"/approve", nil, &v); code != http.StatusOK {
		t.Fatalf("approve %s = %d %+v", p.ID, code, prob)
	}
	return v
}

// settledOn waits until node c reads every action of ids final, and
// returns them.
func settledOn(t *testing.T, c *realmtest.Client, ids ...string) map[string]approval.View {
	t.Helper()
	out := map[string]approval.View{}
	realmtest.EventuallyWithin(t, "the other node to settle the approved actions", settleWait, func() bool {
		for _, id := range ids {
			var v approval.View
			if code, _ := c.Call("GET", "/v1/agents/approvals/"+id, nil, &v); code != http.StatusOK || v.State == approval.StateApproved {
				return false
			}
			out[id] = v
		}
		return true
	})
	return out
}

// TestApprovedTransfersSettleOnAnotherNode: two realm nodes on a 3-node
// NATS cluster. An agent's two transfers wait for its owner, who approves
// both on node A; node A stops after running the first (the ledger
// applied it) and before running the second, storing neither outcome.
// Node B, once node A's lease has passed, settles both: the first done
// with the receipt the ledger holds, though its agent's delegation was
// revoked meanwhile (it is not decided again); the second run now and
// done with its own; each moved once.
func TestApprovedTransfersSettleOnAnotherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and two realms, and waits out a lease")
	}
	t.Parallel()
	urls := strings.Split(natstest.ClusterURLs(natstest.RunCluster(t, 3)), ",")
	a, stopA := nodes.Run(t, realm.Config{ScenesDir: marketScenes, NATS: urls, Node: "realm-a", Listen: "localhost:0"})
	b := nodes.Start(t, realm.Config{ScenesDir: marketScenes, NATS: urls, Node: "realm-b", Listen: "localhost:0", Origins: realmtest.Probe(a).Origins()})
	ada := realmtest.NewMarketUser(t, a, "ada")
	custodial := realmtest.CustodialWith(t, a, ada, 1000)
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	// One agent each: the first's delegation is revoked once node A has
	// stopped, so that its transfer, applied, cannot be decided again.
	first, firstChain := realmtest.NewTrader(t, a, ada.Sess.Avatar["id"].(string))
	second, secondChain := realmtest.NewTrader(t, a, ada.Sess.Avatar["id"].(string))
	signIn := nodes.Client(t, b)
	signIn.Origin = a.URL() // node B serves node A's origin
	onB := signIn.With(signIn.Login(ada.Auth, "ada").Token)

	var applied, unapplied approval.View
	for _, w := range []struct {
		ag     *realmtest.Agent
		amount uint64
		nonce  uint64
		into   *approval.View
	}{{first, 300, 1, &applied}, {second, 200, 2, &unapplied}} {
		if ans := w.ag.Post("POST", "/v1/assets/transfers", realmtest.AgentTransfer("gems", w.amount, custodial, bob, w.nonce), w.into); ans.Status != http.StatusAccepted {
			t.Fatalf("transfer of %d = %d %+v, want 202 waiting", w.amount, ans.Status, ans.Problem)
		}
	}
	stopApprovals(a, map[string]bool{applied.ID: true, unapplied.ID: false})
	stepUp := func(d string) (int, string) { code, p := ada.C.StepUp(ada.Auth, d); return code, p.Detail }
	for _, p := range []approval.View{applied, unapplied} {
		if v := approveOn(t, ada.C, p, stepUp); v.State != approval.StateApproved {
			t.Fatalf("node A, stopping, answered %s for %s", v.State, p.ID)
		}
	}
	realmtest.Eventually(t, "node B to see the first transfer applied by node A", func() bool {
		got, _ := realmtest.BalanceOf(b, "gems", bob)
		return got == 300
	})
	stopA()
	if err := realmtest.Probe(b).AgentRevocations().Revoke(context.Background(), firstChain.IDs()[0], "test", "revoked while its transfer was settled"); err != nil {
		t.Fatalf("revoke the first agent's delegation on node B: %v", err)
	}

	got := settledOn(t, onB, applied.ID, unapplied.ID)
	for _, p := range []approval.View{applied, unapplied} {
		v := got[p.ID]
		var res struct {
			Digest  string          `json:"digest"`
			Receipt json.RawMessage `json:"receipt"`
		}
		if v.State != approval.StateDone || json.Unmarshal(v.Result, &res) != nil || res.Digest == "" {
			t.Fatalf("settled %s = %s %s %+v, want done with a receipt", p.ID, v.State, v.Result, v.Problem)
		}
		var held json.RawMessage
		onB.Must("GET", "/v1/receipts/"+res.Digest, nil, &held)
		if !jsonEqual(t, res.Receipt, held) {
			t.Fatalf("settled %s with receipt\n%s\nthe ledger holds\n%s", p.ID, res.Receipt, held)
		}
	}
	realmtest.Eventually(t, "each transfer to have moved once", func() bool {
		to, _ := realmtest.BalanceOf(b, "gems", bob)
		left, _ := realmtest.BalanceOf(b, "gems", custodial)
		return to == 500 && left == 500
	})
	realmtest.Eventually(t, "the settling in the audit log", func() bool {
		return settledAudited(t, b, firstChain.AgentID(), applied.ID) && settledAudited(t, b, secondChain.AgentID(), unapplied.ID)
	})
	// Settled once: nothing changes after more passes.
	time.Sleep(2 * time.Second)
	if to, _ := realmtest.BalanceOf(b, "gems", bob); to != 500 {
		t.Fatalf("bob holds %d gems after more passes, want 500", to)
	}
}

// settledAudited reports whether node n's view of the audit log holds
// one SettleAgentAction record of each action of ids, done, by agent.
func settledAudited(t *testing.T, n *realm.Realm, agent string, ids ...string) bool {
	seen := map[string]int{}
	for _, ev := range realmtest.AuditEvents(t, n, agent, approvals.ActionSettle) {
		if ev.Signals["state"] == approval.StateDone && ev.Signals["runner"] == "realm-a" && ev.Signals["node"] == "realm-b" {
			seen[ev.Resource]++
		}
	}
	for _, id := range ids {
		if seen[`AgentAction::"`+id+`"`] != 1 {
			return false
		}
	}
	return len(seen) == len(ids)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, x, y []byte) bool {
	t.Helper()
	var a, b any
	if json.Unmarshal(x, &a) != nil || json.Unmarshal(y, &b) != nil {
		return false
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestApprovedCommandsSettleOnAnotherNode: two realm nodes on a 3-node
// NATS cluster and the enrolled gateway of press-1, with its journal.
// An agent's two high-risk ram commands wait for its owner, who approves
// both on node A; node A stops after the first was carried out (its
// grant recorded in flight, bound to the approval) and before the second
// was sent. Node B, once node A's lease has passed, settles both: the
// first from the gateway's journal, done with the gateway's signed
// acknowledgement; the second, never carried out, decided afresh and
// carried out now. The gateway carried out each command once.
func TestApprovedCommandsSettleOnAnotherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and two realms, and waits out a lease")
	}
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	urls := strings.Split(natstest.ClusterURLs(servers), ",")
	a, stopA, b, creds, signer := gatewayOnTwoNodes(t, urls, "press-1")
	journal, err := gateway.OpenJournal(gateway.JournalConfig{Path: filepath.Join(t.TempDir(), "press-1.journal")}, signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = journal.Close() })
	gw, err := gateway.New(gateway.Config{Twin: "press-1", Actuators: creds.Actuators, Conn: natstest.Connect(t, servers[1].ClientURL()), Journal: journal,
		Prefix: "zr", RealmKeys: []common.Address{realmtest.Probe(a).GrantKey(), realmtest.Probe(b).GrantKey()}, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	realmtest.Eventually(t, "the gateway to hear a revocation feed", func() bool { age := gw.FeedAge(); return age >= 0 && age < time.Second })

	olga := realmtest.NewOperator(t, a, "olga", "operator")
	key := realmtest.NewAgentKey(t)
	chain := realmtest.IssueDelegationWithin(t, a, olga.ID, key, []string{agents.ActionCommandActuator},
		[]agents.Resource{{Kind: agents.KindTwin, ID: "press-1"}}, agents.Limits{CommandsPerMinute: 30, MaxRisk: agents.RiskHigh},
		time.Now().Add(-time.Minute).UTC().Truncate(time.Second), time.Hour)
	ag := realmtest.NewAgentClient(t, a.URL(), key, chain)
	signIn := nodes.Client(t, b)
	signIn.Origin = a.URL()
	onB := signIn.With(signIn.Login(olga.Auth, "olga").Token)

	var waiting []approval.View
	for i, v := range []float64{10, 20} {
		ans, answer := ag.Command(realmtest.RamPath, []string{"ram-ran", "ram-unsent"}[i], v)
		if ans.Status != http.StatusAccepted || answer.OwnerApproval == nil {
			t.Fatalf("agent's ram command to %v = %d %+v, want 202 waiting for its owner", v, ans.Status, ans.Problem)
		}
		waiting = append(waiting, *answer.OwnerApproval)
	}
	ran, unsent := waiting[0], waiting[1]
	stopApprovals(a, map[string]bool{ran.ID: true, unsent.ID: false})
	stepUp := func(d string) (int, string) { code, p := olga.StepUp(olga.Auth, d); return code, p.Detail }
	for _, p := range waiting {
		if v := approveOn(t, olga.Client, p, stepUp); v.State != approval.StateApproved {
			t.Fatalf("node A, stopping, answered %s for %s", v.State, p.ID)
		}
	}
	if gw.Accepted() != 1 {
		t.Fatalf("the gateway carried out %d grants before node A stopped, want 1", gw.Accepted())
	}
	stopA()

	got := settledOn(t, onB, ran.ID, unsent.ID)
	gatewayKey := signer.Address().Hex()
	for i, p := range waiting {
		v := got[p.ID]
		var res command.Answer
		if v.State != approval.StateDone || json.Unmarshal(v.Result, &res) != nil || res.Status != string(twin.ResultDone) ||
			res.Ack == nil || res.Ack.Target != []float64{10, 20}[i] || !strings.EqualFold(res.Ack.Signer, gatewayKey) {
			t.Fatalf("settled %s = %s %s %+v, want done with the gateway's acknowledgement", p.ID, v.State, v.Result, v.Problem)
		}
	}
	// The first was settled from the journal, not run again: its audit
	// record says so. Each settling is audited.
	realmtest.Eventually(t, "the settling in the audit log", func() bool {
		resolved := 0
		for _, ev := range realmtest.AuditEvents(t, b, chain.AgentID(), "CommandActuator") {
			if ev.Signals["resolved"] == true && ev.Signals["result"] == string(twin.ResultDone) {
				resolved++
			}
		}
		return resolved == 1 && settledAudited(t, b, chain.AgentID(), ran.ID, unsent.ID)
	})
	time.Sleep(2 * time.Second) // more passes of the reconciler change nothing
	if gw.Accepted() != 2 {
		t.Fatalf("the gateway carried out %d grants, want 2: each command once", gw.Accepted())
	}
}
