package command

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestRevocationReachesNodesAndGatewaysWithoutLeader: two realm nodes and
// a gateway on the first server of a 3-node NATS cluster; the other two
// servers stop, so the agent-revocations bucket has no leader (nor quorum
// to elect one). Revoking a delegation on node 0 still answers, with both
// nodes told and the store not written yet; node 1 refuses the chain as
// revoked by the time the call returns, and the gateway refuses it, all
// before the bucket has a leader. When the servers return, the revocation
// is stored: a node started then refuses the chain too.
func TestRevocationReachesNodesAndGatewaysWithoutLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and stops two of its servers")
	}
	servers := natstest.RunCluster(t, 3)
	c := startCascadeRealm(t, []*server.Server{servers[0], servers[0]}, servers[:1])
	chain := c.issue(t)
	restart1 := natstest.StopClusterNode(t, servers, 1)
	restart2 := natstest.StopClusterNode(t, servers, 2)

	out, err := c.cascades[0].Revoke(t.Context(), chain.Root().ID, "av_0123456789abcdef0123456789abcdef", "revoked by its owner")
	if err != nil {
		t.Fatal(err)
	}
	if out.NodesTold != 2 || out.NodesLive != 2 || out.Stored {
		t.Fatalf("Revoke without a leader = %+v; want both nodes told, not stored", out)
	}
	if !c.nodesRefuse(chain) {
		t.Fatal("a told node does not refuse the chain as revoked when the revoke call returns")
	}
	waitUntil(t, "the gateway to refuse the revoked delegation", 30*time.Second, func() bool { return c.gatewaysRefuse(chain) })
	if c.cascades[0].Pending() != 1 {
		t.Fatalf("%d store attempts pending once the gateway refused; want 1: the bucket answered before its servers returned, the test proved nothing", c.cascades[0].Pending())
	}

	restart1()
	restart2()
	// The outcome, not its pace: a loaded machine may take long to elect
	// the bucket's leader.
	waitUntil(t, "the revocation to be stored once the bucket has a leader", 2*time.Minute, func() bool {
		return c.cascades[0].Pending() == 0 && c.cascades[1].Pending() == 0
	})
	// A node started now reads the revocation from the store. Its other
	// buckets may still be electing their leaders: it starts once they
	// answer.
	nc := natstest.Connect(t, servers[0].ClientURL())
	var fresh *agents.Guard
	waitUntil(t, "a node to start after the recovery", 2*time.Minute, func() bool {
		g, err := openGuard(t.Context(), nc, c.recordKey, c.roots)
		if err != nil {
			t.Logf("a node does not start yet: %v", err)
			return false
		}
		fresh = g
		return true
	})
	t.Cleanup(fresh.Close)
	if agents.ReasonOf(fresh.Revocations().Check(chain)) != agents.ReasonRevoked {
		t.Fatal("a node started after recovery does not refuse the revoked chain: it was not stored")
	}
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
