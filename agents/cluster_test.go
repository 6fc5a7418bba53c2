package agents

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// Two realm nodes, each connected to another server of a 3-node NATS
// cluster (R3 buckets): a delegation issued by one node's key is enforced
// on the other, its limits hold across both, and a revocation made on one
// stops its sub-delegation on the other.
func TestTwoNodesOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	servers := natstest.RunCluster(t, 3)
	clock := trust.NewManualClock(t0)
	keyA, keyB := realmKey(t), realmKey(t)
	roots := NewRootSet(KeySigner{Key: keyA}.Address(), KeySigner{Key: keyB}.Address())
	node := func(i int) *Guard {
		st, err := store.New(context.Background(), natstest.Connect(t, servers[i].ClientURL()),
			store.Config{Logger: testLogger(t), RecordKey: testRecordKey, WaitForJetStream: true})
		if err != nil {
			t.Fatal(err)
		}
		if st.Replicas() != 3 {
			t.Fatalf("store replicas %d, want 3", st.Replicas())
		}
		g, err := New(context.Background(), Config{Store: st, Roots: roots, Clock: clock, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		return g
	}
	a, b := node(0), node(2)

	agent, sub := agentKey(t), agentKey(t)
	gr := rootGrant(agent)
	gr.Limits.DailyValue = 500
	root := issue(t, keyA, gr) // issued by node A's key
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	onA, onB := mustAgent(t, a, root, agent), mustAgent(t, b, root, agent)
	if d := evaluate(t, b, onB, transfer(100)); d.Outcome != Allow {
		t.Fatalf("node B on node A's delegation: %s", d)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	spent := 0
	for i := range 8 {
		wg.Go(func() {
			n, ag := a, onA
			if i%2 == 1 {
				n, ag = b, onB
			}
			err := n.Spend(context.Background(), ag, transfer(100))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				spent++
			case ReasonOf(err) != ReasonOverLimit:
				t.Errorf("Spend: %v", err)
			}
		})
	}
	wg.Wait()
	if spent != 5 {
		t.Fatalf("%d transfers of 100 spent against a daily 500 across two nodes, want 5", spent)
	}

	mustAgent(t, b, derived, sub)
	if err := a.Revocations().Revoke(context.Background(), root.Root().ID, testOwner, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node B to refuse the sub-delegation of a delegation revoked on node A", func() bool {
		clock.Advance(time.Millisecond)
		_, err := request(t, b, derived, sub)
		return ReasonOf(err) == ReasonRevoked
	})
}
