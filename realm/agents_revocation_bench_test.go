package realm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents"
)

// BenchmarkAgentRevocationAcrossNodes: two realm nodes on a 3-node NATS
// cluster and the enrolled gateway of conveyor-1 (twoNodesAndAGateway).
// Each iteration stops a fresh owner's agents on node A, as "sign out
// everywhere" does (the delegations part's agents/cascade broadcaster),
// and measures, from the start of the call, until both nodes' Guards
// refuse the owner's delegation as revoked and the gateway refuses grants
// naming the owner. answered- is when the call returned: node B told and
// the revocation stored.
//
//	go test -run '^$' -bench BenchmarkAgentRevocationAcrossNodes -benchtime 200x ./realm
func BenchmarkAgentRevocationAcrossNodes(b *testing.B) {
	a, nb, gw := twoNodesAndAGateway(b)
	eventually(b, "node A to count node B live", func() bool { return len(a.otherNodes()) == 1 })
	key := newAgentKey(b)
	revoked := func(r *Realm, c *agents.Chain) bool {
		return agents.ReasonOf(r.agents.Revocations().Check(c)) == agents.ReasonRevoked
	}
	var took, answered latencies
	i := 0
	for b.Loop() {
		i++
		owner := fmt.Sprintf("av_%032x", i)
		chain := issueDelegationWithin(b, a, owner, key, []string{agents.ActionCommandActuator},
			[]agents.Resource{{Kind: agents.KindActuator, ID: "conveyor-1/belt-speed"}},
			agents.Limits{CommandsPerMinute: 30, MaxRisk: agents.RiskLow}, time.Now().Add(-time.Minute), time.Hour)
		start := time.Now()
		returned := make(chan error, 1)
		go func() {
			out, err := a.delegations.StopOwnersAgents(context.Background(), owner, "bench")
			answered.add(time.Since(start))
			if err == nil && out.NodesTold != 2 {
				err = fmt.Errorf("%+v: want both nodes told", out)
			}
			returned <- err
		}()
		// Polled every 20 µs: the measure is at most that late.
		for !revoked(a, chain) || !revoked(nb, chain) || !gw.AgentRevoked(owner) {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("the revocation of %s's agents did not reach both nodes and the gateway in 10 s", owner)
			}
			time.Sleep(20 * time.Microsecond)
		}
		took.add(time.Since(start))
		if err := <-returned; err != nil {
			b.Fatal(err)
		}
	}
	took.report(b, "")
	answered.report(b, "answered-")
}
