package agents

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/testlog"
	"github.com/zerorealm/zerorealm/trust"
)

var testRecordKey = []byte("zerorealm test record key 32 by!")

// testLogger writes the warnings of what a test runs into its output.
var testLogger = testlog.New

// realm is what a test needs of one realm: its node key and a clock, and
// the NATS server its nodes share.
type testRealm struct {
	srv   *server.Server
	key   *ecdsa.PrivateKey
	clock *trust.ManualClock
}

func newTestRealm(t testing.TB) *testRealm {
	return &testRealm{srv: natstest.RunServer(t), key: realmKey(t), clock: trust.NewManualClock(t0)}
}

// node opens a Guard on its own NATS connection, as a realm node would.
func (r *testRealm) node(t testing.TB, cfg Config) *Guard {
	t.Helper()
	st, err := store.New(context.Background(), natstest.Connect(t, r.srv.ClientURL()), store.Config{Logger: testLogger(t), RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Roots, cfg.Clock, cfg.Logger = st, NewRootSet(KeySigner{Key: r.key}.Address()), r.clock, testLogger(t)
	g, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// request authenticates holder's chain at g with a fresh proof, as an
// agent's request would be: first without a nonce, then with the one the
// node answers.
func request(t testing.TB, g *Guard, c *Chain, holder ed25519.PrivateKey) (*Agent, error) {
	t.Helper()
	now := g.clock.Now()
	req := ProofRequest{Method: "POST", URL: testURL, Token: c.Token(), Proof: proofFor(t, holder, "POST", testURL, c.Token(), "", now)}
	a, err := g.Authenticate(context.Background(), req)
	if ReasonOf(err) != ReasonNonce {
		return a, err
	}
	req.Proof = proofFor(t, holder, "POST", testURL, c.Token(), g.Nonce(), now)
	return g.Authenticate(context.Background(), req)
}

func mustAgent(t testing.TB, g *Guard, c *Chain, holder ed25519.PrivateKey) *Agent {
	t.Helper()
	a, err := request(t, g, c, holder)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return a
}

func evaluate(t testing.TB, g *Guard, a *Agent, act Action) Decision {
	t.Helper()
	d, err := g.Evaluate(context.Background(), a, act)
	if err != nil {
		t.Fatalf("Evaluate(%+v): %v", act, err)
	}
	return d
}

var (
	joinFoundry   = Action{Name: ActionJoinScene, Resource: Resource{Kind: KindScene, ID: "foundry"}}
	conveyor      = Resource{Kind: KindActuator, ID: "press-line/conveyor"}
	oreCollection = Resource{Kind: KindCollection, ID: "ore"}
)

func transfer(v uint64) Action {
	return Action{Name: ActionTransferAsset, Resource: oreCollection, Value: v}
}

func command(r Risk) Action { return Action{Name: ActionCommandActuator, Resource: conveyor, Risk: r} }

func TestEvaluateScopeAndLimits(t *testing.T) {
	r := newTestRealm(t)
	g := r.node(t, Config{})
	agent := agentKey(t)
	a := mustAgent(t, g, issue(t, r.key, rootGrant(agent)), agent)
	cases := []struct {
		name string
		act  Action
		want Outcome
		why  Reason
	}{
		{"join a granted scene", joinFoundry, Allow, ""},
		{"view the twin", Action{Name: ActionViewTwin, Resource: Resource{Kind: KindTwin, ID: "press-line"}}, Allow, ""},
		{"an action not granted", Action{Name: ActionEnterZone, Resource: Resource{Kind: KindScene, ID: "foundry"}}, Deny, ReasonOutOfScope},
		{"another scene", Action{Name: ActionJoinScene, Resource: Resource{Kind: KindScene, ID: "market"}}, Deny, ReasonOutOfScope},
		{"another twin's actuator", Action{Name: ActionCommandActuator, Resource: Resource{Kind: KindActuator, ID: "kiln/door"}, Risk: RiskLow}, Deny, ReasonOutOfScope},
		{"a small transfer", transfer(100), Allow, ""},
		{"above auto-approval", transfer(500), Approve, ""},
		{"above auto-approval, approved", Action{Name: ActionTransferAsset, Resource: oreCollection, Value: 500, Approved: true}, Allow, ""},
		{"above the per-transfer limit", transfer(1001), Deny, ReasonOverLimit},
		{"a medium-risk command", command(RiskMedium), Allow, ""},
		{"a high-risk command waits", command(RiskHigh), Approve, ""},
		{"a critical command", command(RiskCritical), Deny, ReasonOverLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each case starts from a clean record: refusals would
			// otherwise lower the agent's trust (TestBehaviour...).
			g.behaviour.Forget(a.ID)
			d := evaluate(t, g, a, tc.act)
			if d.Outcome != tc.want || ReasonOf(d.Err) != tc.why {
				t.Fatalf("Evaluate = %s, want %s %s", d, tc.want, tc.why)
			}
			if tc.want == Deny && !errors.Is(d.Err, ErrForbidden) {
				t.Fatalf("%v is not ErrForbidden", d.Err)
			}
			if d.Context()["needs_approval"] != (tc.want == Approve) {
				t.Fatalf("context.agent.needs_approval = %v", d.Context()["needs_approval"])
			}
			// context.agent.used holds the counter the action counts
			// against, and only that one: nothing else was read.
			used := d.Context()["used"].(map[string]any)
			_, day := used["day_value"]
			_, minute := used["minute_commands"]
			if day != (tc.act.Name == ActionTransferAsset) || minute != (tc.act.Name == ActionCommandActuator) {
				t.Fatalf("context.agent.used = %v for %s", used, tc.act.Name)
			}
		})
	}
}

// TestOnRevokeTellsEveryNode: each node is told, from the change feed, of
// a revoked delegation, a suspended agent and an owner's revocation made
// on another node: what the realm passes on to twin gateways.
func TestOnRevokeTellsEveryNode(t *testing.T) {
	r := newTestRealm(t)
	a, b := r.node(t, Config{}), r.node(t, Config{})
	told := make(chan string, 16)
	b.Revocations().OnRevoke(func(ids ...string) {
		for _, id := range ids {
			told <- id
		}
	})
	c := issue(t, r.key, rootGrant(agentKey(t)))
	ctx := context.Background()
	if err := a.Revocations().Revoke(ctx, c.Root().ID, testOwner, "test"); err != nil {
		t.Fatal(err)
	}
	if err := a.Revocations().Suspend(ctx, c.AgentID(), "test", "test"); err != nil {
		t.Fatal(err)
	}
	if err := a.Revocations().RevokeOwner(ctx, testOwner, testOwner, "test"); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{c.Root().ID: true, c.AgentID(): true, testOwner: true}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case id := <-told:
			delete(want, id)
		case <-deadline:
			t.Fatalf("node b was never told of %v", want)
		}
	}
}

// Two realm nodes spend one delegation's daily budget at once: together
// they never spend more than it.
func TestDailyBudgetHoldsAcrossNodes(t *testing.T) {
	r := newTestRealm(t)
	nodes := []*Guard{r.node(t, Config{}), r.node(t, Config{})}
	agent := agentKey(t)
	g := rootGrant(agent)
	g.Limits.DailyValue = 1000
	c := issue(t, r.key, g)
	agents := []*Agent{mustAgent(t, nodes[0], c, agent), mustAgent(t, nodes[1], c, agent)}

	var mu sync.Mutex
	spent, refused := 0, 0
	var wg sync.WaitGroup
	for n := range nodes {
		for range 12 {
			wg.Go(func() {
				err := nodes[n].Spend(context.Background(), agents[n], transfer(100))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					spent++
				case ReasonOf(err) == ReasonOverLimit:
					refused++
				default:
					t.Errorf("Spend: %v", err)
				}
			})
		}
	}
	wg.Wait()
	if spent != 10 || refused != 14 {
		t.Fatalf("%d transfers of 100 spent and %d refused against a daily 1000, want 10 and 14", spent, refused)
	}
	d := evaluate(t, nodes[1], agents[1], transfer(100))
	if ReasonOf(d.Err) != ReasonOverLimit {
		t.Fatalf("after the budget is spent: %s", d)
	}
	if used := d.Context()["used"].(map[string]any)["day_value"]; used != int64(1000) {
		t.Fatalf("context.agent.used.day_value = %v, want 1000", used)
	}
	// The next UTC day has a fresh budget.
	r.clock.Advance(24 * time.Hour)
	c2 := issue(t, r.key, func() Grant { g := g; g.IssuedAt, g.ExpiresAt = t0.Add(24*time.Hour), t0.Add(30*time.Hour); return g }())
	a2 := mustAgent(t, nodes[0], c2, agent)
	if err := nodes[0].Spend(context.Background(), a2, transfer(100)); err != nil {
		t.Fatalf("a new day: %v", err)
	}
}

// What a sub-agent spends counts against its parent's budget, and the
// sub-agent's own smaller limit binds it first.
func TestSubAgentSpendsFromParentBudget(t *testing.T) {
	r := newTestRealm(t)
	node := r.node(t, Config{})
	agent, sub := agentKey(t), agentKey(t)
	root := issue(t, r.key, rootGrant(agent)) // 30 commands a minute
	sg := subGrant(sub)                       // 10 a minute
	derived, err := Derive(root, agent, sg)
	if err != nil {
		t.Fatal(err)
	}
	parent, child := mustAgent(t, node, root, agent), mustAgent(t, node, derived, sub)
	ctx := context.Background()
	for i := range 10 {
		if err := node.Spend(ctx, child, command(RiskLow)); err != nil {
			t.Fatalf("sub-agent command %d: %v", i, err)
		}
	}
	wantReason(t, node.Spend(ctx, child, command(RiskLow)), ReasonRate)
	if d := evaluate(t, node, child, command(RiskLow)); ReasonOf(d.Err) != ReasonRate {
		t.Fatalf("Evaluate after the sub-agent's rate: %s", d)
	}
	for i := range 20 {
		if err := node.Spend(ctx, parent, command(RiskLow)); err != nil {
			t.Fatalf("parent command %d: %v", i, err)
		}
	}
	wantReason(t, node.Spend(ctx, parent, command(RiskLow)), ReasonRate)
	// A new minute.
	r.clock.Advance(time.Minute)
	if err := node.Spend(ctx, child, command(RiskLow)); err != nil {
		t.Fatalf("next minute: %v", err)
	}
}

func TestStolenTokenAndReplayedProof(t *testing.T) {
	r := newTestRealm(t)
	node := r.node(t, Config{})
	agent := agentKey(t)
	c := issue(t, r.key, rootGrant(agent))
	now := r.clock.Now()
	// The thief has the token, not the key.
	thief := agentKey(t)
	_, err := node.Authenticate(context.Background(), ProofRequest{Method: "POST", URL: testURL, Token: c.Token(), Proof: proofFor(t, thief, "POST", testURL, c.Token(), node.Nonce(), now)})
	wantReason(t, err, ReasonProofBinding)
	// Nor a bearer token alone.
	_, err = node.Authenticate(context.Background(), ProofRequest{Method: "POST", URL: testURL, Token: c.Token()})
	wantReason(t, err, ReasonProof)
	// A genuine proof works once.
	req := ProofRequest{Method: "POST", URL: testURL, Token: c.Token(), Proof: proofFor(t, agent, "POST", testURL, c.Token(), node.Nonce(), now)}
	if _, err := node.Authenticate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	_, err = node.Authenticate(context.Background(), req)
	wantReason(t, err, ReasonReplay)
	if as := node.Assess(AgentID(pubOf(agent))); len(as.Factors()) == 0 {
		t.Fatal("a stolen token's use left no trace in the agent's behaviour")
	}
}

// Revoking a delegation stops it and every delegation derived from it, on
// the node that revoked and on another.
func TestRevocationCascades(t *testing.T) {
	r := newTestRealm(t)
	a, b := r.node(t, Config{}), r.node(t, Config{})
	agent, sub := agentKey(t), agentKey(t)
	root := issue(t, r.key, rootGrant(agent))
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	child := mustAgent(t, b, derived, sub)
	mustAgent(t, b, root, agent)

	if err := a.Revocations().Revoke(context.Background(), root.Root().ID, testOwner, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = request(t, a, derived, sub)
	wantReason(t, err, ReasonRevoked)
	waitFor(t, "node b to refuse the revoked sub-delegation", func() bool {
		_, err := request(t, b, derived, sub)
		return ReasonOf(err) == ReasonRevoked
	})
	_, err = request(t, b, root, agent)
	wantReason(t, err, ReasonRevoked)
	// An agent authenticated before the revocation is refused at its next
	// action.
	if _, err := b.Evaluate(context.Background(), child, command(RiskLow)); ReasonOf(err) != ReasonRevoked {
		t.Fatalf("Evaluate after revocation: %v", err)
	}
	// Revoking the leaf leaves the parent alone.
	root2 := issue(t, r.key, rootGrant(agent))
	derived2, err := Derive(root2, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Revocations().Revoke(context.Background(), derived2.Leaf().ID, testOwner, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = request(t, b, derived2, sub)
	wantReason(t, err, ReasonRevoked)
	mustAgent(t, b, root2, agent)
}

// The owner's "sign out everywhere" stops every delegation confirmed
// before it, not the ones confirmed after.
func TestRevokeOwner(t *testing.T) {
	r := newTestRealm(t)
	a, b := r.node(t, Config{}), r.node(t, Config{})
	agent := agentKey(t)
	before := issue(t, r.key, rootGrant(agent))
	r.clock.Advance(time.Minute)
	if err := a.Revocations().RevokeOwner(context.Background(), testOwner, testOwner, "sign out everywhere"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node b to refuse the owner's delegation", func() bool {
		_, err := request(t, b, before, agent)
		return ReasonOf(err) == ReasonRevoked
	})
	r.clock.Advance(time.Second)
	g := rootGrant(agent)
	g.IssuedAt = r.clock.Now()
	mustAgent(t, b, issue(t, r.key, g), agent)
}

// A burst of out-of-scope attempts suspends the agent on every node,
// until its owner reinstates it.
func TestOutOfScopeBurstSuspends(t *testing.T) {
	r := newTestRealm(t)
	a, b := r.node(t, Config{}), r.node(t, Config{})
	agent := agentKey(t)
	c := issue(t, r.key, rootGrant(agent))
	ag := mustAgent(t, a, c, agent)
	probe := Action{Name: ActionCommandActuator, Resource: Resource{Kind: KindActuator, ID: "kiln/door"}, Risk: RiskLow}
	for i := range 5 {
		r.clock.Advance(time.Second)
		d := evaluate(t, a, ag, probe)
		if ReasonOf(d.Err) != ReasonOutOfScope {
			t.Fatalf("attempt %d: %s", i, d)
		}
	}
	if as := a.Assess(ag.ID); as.State != trust.Suspended {
		t.Fatalf("after the burst: %+v", as)
	}
	_, err := a.Evaluate(context.Background(), ag, joinFoundry)
	wantReason(t, err, ReasonSuspended)
	waitFor(t, "node b to refuse the suspended agent", func() bool {
		_, err := request(t, b, c, agent)
		return ReasonOf(err) == ReasonSuspended
	})
	if err := a.Reinstate(context.Background(), ag.ID); err != nil {
		t.Fatal(err)
	}
	if d := evaluate(t, a, ag, joinFoundry); d.Outcome != Allow {
		t.Fatalf("after reinstatement: %s", d)
	}
}

// waitFor polls cond with a generous limit: under load a change feed may
// take a while to reach another node, and how long is not what is tested.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A node that can no longer hear revocations refuses agents rather than
// trust a list that may be stale.
func TestRevocationsFailClosedWhenTheFeedIsLost(t *testing.T) {
	r := newTestRealm(t)
	nc := natstest.Connect(t, r.srv.ClientURL())
	st, err := store.New(context.Background(), nc, store.Config{Logger: testLogger(t), RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), Config{Store: st, Roots: NewRootSet(KeySigner{Key: r.key}.Address()), Clock: r.clock, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	agent := agentKey(t)
	c := issue(t, r.key, rootGrant(agent))
	if err := g.Revocations().Check(c); err != nil {
		t.Fatalf("before: %v", err)
	}
	nc.Close()
	waitFor(t, "the lost feed to stop the mirror", func() bool {
		return errors.Is(g.Revocations().Check(c), ErrRevocationsUnknown)
	})
	if !errors.Is(g.Revocations().Check(c), store.ErrUnavailable) {
		t.Fatal("ErrRevocationsUnknown does not wrap store.ErrUnavailable")
	}
}
