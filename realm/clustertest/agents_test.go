package clustertest

import (
	"bytes"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestAgentApprovalTwoNodes: two realm nodes on a 3-node NATS cluster.
// An agent's transfer waits on node A; its owner, signed in on both
// nodes, approves it on both at once, each with its own step-up; it runs
// exactly once, and the other approval is told it is no longer pending.
func TestAgentApprovalTwoNodes(t *testing.T) {
	a, b := nodes.TwoOnClusterWith(t, realm.Config{ScenesDir: marketScenes})
	ada := realmtest.NewMarketUser(t, a, "ada")
	ownerID := ada.Sess.Avatar["id"].(string)
	custodial := realmtest.CustodialWith(t, a, ada, 1000)
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	ag, _ := realmtest.NewTrader(t, a, ownerID)

	var p approval.View
	if ans := ag.Post("POST", "/v1/assets/transfers", realmtest.AgentTransfer("gems", 300, custodial, bob, 1), &p); ans.Status != http.StatusAccepted {
		t.Fatalf("transfer of 300 on node A = %d %+v", ans.Status, ans.Problem)
	}
	// The owner signed in twice, on each node, and confirms the action
	// with a step-up in each session: both approvals pass their step-up
	// and race for the record, on two nodes.
	signIn := nodes.Client(t, b)
	signIn.Origin = a.URL() // node B serves node A's origin
	onB := signIn.With(signIn.Login(ada.Auth, "ada").Token)
	onA := ada.C
	for _, c := range []*realmtest.Client{onA, onB} {
		if code, prob := c.StepUp(ada.Auth, p.Digest); code != 200 {
			t.Fatalf("step-up = %d %+v", code, prob)
		}
	}
	codes := make([]int, 2)
	problems := make([]string, 2)
	var wg sync.WaitGroup
	for i, c := range []*realmtest.Client{onA, onB} {
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
	ag.Post("GET", "/v1/agents/approvals/"+p.ID, nil, &fromA)
	onB.Must("GET", "/v1/agents/approvals/"+p.ID, nil, &fromB)
	if fromA.State != approval.StateDone || fromB.State != approval.StateDone || !bytes.Equal(fromA.Result, fromB.Result) {
		t.Fatalf("node A reads %s, node B %s", fromA.State, fromB.State)
	}
	for _, n := range []*realm.Realm{a, b} {
		realmtest.Eventually(t, "both nodes to see 300 gems moved once", func() bool {
			got, _ := realmtest.BalanceOf(n, "gems", bob)
			left, _ := realmtest.BalanceOf(n, "gems", custodial)
			return got == 300 && left == 700
		})
	}
}
