package command

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// BenchmarkRevocationCascade revokes a root delegation on one realm node
// and measures, from the start of the revoke call, until every node's
// agents.Guard refuses its chain and every twin gateway refuses grants
// that name it, whether or not the call has returned by then: three realm
// nodes, each on its own server of a 3-node NATS cluster (R3 buckets),
// wired as the realm wires them (see startCascadeRealm), and one gateway
// on each server. p50-ms and p99-ms are over every revocation of the run,
// the time for the last of the six to know; answered-p99-ms is when the
// revoke call returned (every live node told and the store written).
//
//	go test -run '^$' -bench BenchmarkRevocationCascade -benchtime 200x ./realm/internal/twins/command
func BenchmarkRevocationCascade(b *testing.B) {
	servers := natstest.RunCluster(b, 3)
	c := startCascadeRealm(b, servers, servers)
	ctx := context.Background()
	var took, answered []time.Duration
	for b.Loop() {
		chain := c.issue(b)
		start := time.Now()
		returned := make(chan error, 1)
		go func() {
			_, err := c.cascades[0].Revoke(ctx, chain.Root().ID, "bench", "bench")
			answered = append(answered, time.Since(start))
			returned <- err
		}()
		// Polled every 20 µs: the measure is at most that late.
		for !c.nodesRefuse(chain) || !c.gatewaysRefuse(chain) {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("revocation %s did not reach every node and gateway in 10 s", chain.Root().ID)
			}
			time.Sleep(20 * time.Microsecond)
		}
		took = append(took, time.Since(start))
		if err := <-returned; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(percentileMs(took, 0.50), "p50-ms")
	b.ReportMetric(percentileMs(took, 0.99), "p99-ms")
	b.ReportMetric(percentileMs(answered, 0.99), "answered-p99-ms")
}

// percentileMs is the p-quantile of d, in milliseconds.
func percentileMs(d []time.Duration, p float64) float64 {
	slices.Sort(d)
	return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
}
