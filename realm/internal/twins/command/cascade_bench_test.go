package command

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// BenchmarkRevocationCascade revokes a root delegation on one realm node
// and measures until every node's agents.Guard refuses its chain and
// every twin gateway refuses grants that name it: three realm nodes, each
// on its own server of a 3-node NATS cluster (R3 buckets), each passing
// the revocations its change feed brings on to the gateways through its
// own revocation feed (Revocations.OnRevoke and twin.RevocationFeed, as
// the realm wires them), and one gateway on each server. p50-ms and
// p99-ms are over every revocation of the run, the time for the last of
// the six to know.
//
//	go test -run '^$' -bench BenchmarkRevocationCascade -benchtime 200x ./realm/internal/twins/command
func BenchmarkRevocationCascade(b *testing.B) {
	servers := natstest.RunCluster(b, 3)
	ctx := context.Background()
	realmKeys := make([]*ecdsa.PrivateKey, 3)
	var addrs []common.Address
	for i := range realmKeys {
		k, err := crypto.GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		realmKeys[i] = k
		addrs = append(addrs, crypto.PubkeyToAddress(k.PublicKey))
	}
	roots := agents.NewRootSet(addrs...)
	guards := make([]*agents.Guard, 3)
	for i, srv := range servers {
		nc := natstest.Connect(b, srv.ClientURL())
		st, err := store.New(ctx, nc, store.Config{RecordKey: []byte("zerorealm bench record key 32 b!"), WaitForJetStream: true})
		if err != nil {
			b.Fatal(err)
		}
		g, err := agents.New(ctx, agents.Config{Store: st, Roots: roots})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(g.Close)
		signer, err := twin.NewSigner(realmKeys[i])
		if err != nil {
			b.Fatal(err)
		}
		feed, err := twin.StartRevocationFeed(twin.FeedConfig{Conn: nc, Signer: signer})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(feed.Close)
		g.Revocations().OnRevoke(func(ids ...string) { _ = feed.RevokeAgents(ids...) })
		b.Cleanup(func() { g.Revocations().OnRevoke(nil) })
		guards[i] = g
	}
	gateways := make([]*gateway.Gateway, 3)
	for i, srv := range servers {
		key, err := twin.GenerateSigner()
		if err != nil {
			b.Fatal(err)
		}
		gw, err := gateway.New(gateway.Config{
			Twin: fmt.Sprint("twin-", i), Actuators: []twin.Actuator{{ID: "valve", Min: 0, Max: 10, MaxRate: 1, Risk: twin.RiskLow}},
			Conn: natstest.Connect(b, srv.ClientURL()), RealmKeys: addrs, Signer: key,
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := gw.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(gw.Close)
		gateways[i] = gw
	}

	_, holder, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	issuer := agents.KeySigner{Key: realmKeys[0]}
	issue := func() *agents.Chain {
		now := time.Now().UTC()
		d, err := agents.PrepareRoot(agents.Grant{
			Owner: "av_0123456789abcdef0123456789abcdef", Agent: agents.EncodeAgentKey(holder.Public().(ed25519.PublicKey)),
			Actions: []string{agents.ActionCommandActuator}, Resources: []agents.Resource{{Kind: agents.KindTwin, ID: "twin-0"}},
			Limits:   agents.Limits{CommandsPerMinute: 10, MaxRisk: agents.RiskLow},
			IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		}, issuer.Address())
		if err != nil {
			b.Fatal(err)
		}
		c, err := d.Sign(issuer)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	reached := func(c *agents.Chain) bool {
		for _, g := range guards {
			if agents.ReasonOf(g.Revocations().Check(c)) != agents.ReasonRevoked {
				return false
			}
		}
		for _, gw := range gateways {
			if !gw.AgentRevoked(c.Root().ID) {
				return false
			}
		}
		return true
	}

	var took []time.Duration
	for b.Loop() {
		c := issue()
		start := time.Now()
		if err := guards[0].Revocations().Revoke(ctx, c.Root().ID, "bench", "bench"); err != nil {
			b.Fatal(err)
		}
		// Polled every 20 µs: the measure is at most that late.
		for !reached(c) {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("revocation %s did not reach every node and gateway in 10 s", c.Root().ID)
			}
			time.Sleep(20 * time.Microsecond)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	at := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
