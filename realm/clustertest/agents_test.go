package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// TestAgentApprovalTwoNodes: two realm nodes on a 3-node NATS cluster.
// An agent's transfer waits on node A; its owner, signed in on both
// nodes, approves it on both at once, each with its own step-up; it runs
// exactly once, and the other approval is told it is no longer pending.
func TestAgentApprovalTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and two realms")
	}
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
	signIn := newClient(t, b)
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
		eventually(t, "both nodes to see 300 gems moved once", func() bool {
			got, _ := realmtest.BalanceOf(n, "gems", bob)
			left, _ := realmtest.BalanceOf(n, "gems", custodial)
			return got == 300 && left == 700
		})
	}
}

// TestAgentTwinCommandAcrossNodes: two realm nodes on a 3-node NATS
// cluster and one enrolled gateway. A delegation issued by node A's key is
// enforced on node B for a twin command (B signs the grant, the gateway
// carries it out); revoked on node A, it is refused by node B and by the
// gateway, which also refuses a grant B signed before the revocation.
func TestAgentTwinCommandAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	servers := natstest.RunCluster(t, 3)
	urls := strings.Split(natstest.ClusterURLs(servers), ",")
	dirA, dirB := t.TempDir(), t.TempDir()
	creds, err := realm.EnrollGateway(dirA, "", "zr", "conveyor-1", "")
	if err != nil {
		t.Fatal(err)
	}
	// Both nodes know the one gateway of the conveyor.
	enrolled, err := os.ReadFile(filepath.Join(dirA, command.GatewaysFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, command.GatewaysFile), enrolled, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startRealm(t, realm.Config{DataDir: dirA, NATS: urls, Node: "realm-a"})
	b := startRealm(t, realm.Config{DataDir: dirB, NATS: urls, Node: "realm-b"})

	key, err := crypto.HexToECDSA(strings.TrimPrefix(creds.Key, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := twin.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Twin: "conveyor-1", Actuators: creds.Actuators, Conn: natstest.Connect(t, servers[1].ClientURL()),
		RealmKeys: []common.Address{realmtest.Probe(a).GrantKey(), realmtest.Probe(b).GrantKey()}, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	eventually(t, "the gateway to hear a revocation feed", func() bool { age := gw.FeedAge(); return age >= 0 && age < time.Second })

	owner := newOperator(t, a, "olga", "operator")
	agentKey := realmtest.NewAgentKey(t)
	chain := realmtest.IssueDelegationWithin(t, a, owner.ID, agentKey, []string{agents.ActionCommandActuator},
		[]agents.Resource{{Kind: agents.KindActuator, ID: "conveyor-1/belt-speed"}},
		agents.Limits{CommandsPerMinute: 30, MaxRisk: agents.RiskLow}, time.Now().Add(-time.Minute), time.Hour)
	onB := realmtest.NewAgentClient(t, b.URL(), agentKey, chain)
	// Node B trusts node A's key as a root once it has read A's signers
	// (every 10 s).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, answer := onB.Command(realmtest.BeltPath, fmt.Sprint("across-", time.Now().UnixNano()), 1)
		if resp.Status == http.StatusOK && answer.Status == string(twin.ResultDone) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B on a delegation node A issued = %d %+v %+v, want done", resp.Status, resp.Problem, answer.Ack)
		}
	}
	c, err := twin.NewCommand("conveyor-1", "belt-speed", chain.AgentID(), "signed-on-b", twin.CommandRequest{Op: twin.OpSet, Value: new(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	signedOnB := realmtest.Probe(b).Dispatcher().AgentGrantFor(c, c.Hash(), owner.ID, chain.IDs())

	if err := realmtest.Probe(a).AgentRevocations().Revoke(context.Background(), chain.Root().ID, owner.ID, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gateway to hear of the revocation made on node A", func() bool { return gw.AgentRevoked(chain.Root().ID) })
	if _, err := realmtest.Probe(b).Dispatcher().Deliver(context.Background(), signedOnB); twin.ReasonOf(err) != twin.ReasonDelegationRevoked {
		t.Fatalf("a grant node B signed before the revocation = %v, want delegation_revoked", err)
	}
	eventually(t, "node B to refuse the revoked delegation", func() bool {
		resp, _ := onB.Command(realmtest.BeltPath, fmt.Sprint("after-", time.Now().UnixNano()), 1)
		return resp.Status == http.StatusUnauthorized && resp.Problem.Type == edge.ProblemBase+edge.TypeDelegationRevoked
	})
}
