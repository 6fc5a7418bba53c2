package command

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/cascade"
	"github.com/zerorealm/zerorealm/internal/clustercast"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// cascadeRealm is the agent revocation path of a realm cluster as the
// realm wires it (realm/wire_agents.go, wire_twins.go): on each node an
// agents.Guard, whose mirror tells the node's twin revocation feed of
// every revocation new to it (OnRevoke), and a cascade.Broadcaster that
// tells the other nodes; and real twin gateways that pin every node's
// grant key.
type cascadeRealm struct {
	guards     []*agents.Guard
	cascades   []*cascade.Broadcaster
	gateways   []*gateway.Gateway
	rootKey    *ecdsa.PrivateKey
	roots      *agents.RootSet
	recordKey  []byte
	nodeServer []*server.Server
}

// startCascadeRealm starts one realm node on each of nodeServers (named
// n0, n1, ...) and one gateway on each of gatewayServers.
func startCascadeRealm(tb testing.TB, nodeServers, gatewayServers []*server.Server) *cascadeRealm {
	tb.Helper()
	ctx := context.Background()
	c := &cascadeRealm{recordKey: []byte("zerorealm bench record key 32 b!"), nodeServer: nodeServers}
	auth, err := clustermsg.New(c.recordKey)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	var addrs []common.Address
	keys := make([]*ecdsa.PrivateKey, len(nodeServers))
	for i := range nodeServers {
		names = append(names, fmt.Sprint("n", i))
		if keys[i], err = crypto.GenerateKey(); err != nil {
			tb.Fatal(err)
		}
		addrs = append(addrs, crypto.PubkeyToAddress(keys[i].PublicKey))
	}
	c.rootKey, c.roots = keys[0], agents.NewRootSet(addrs...)
	for i, srv := range nodeServers {
		nc := natstest.Connect(tb, srv.ClientURL())
		g, err := openGuard(ctx, nc, c.recordKey, c.roots)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(g.Close)
		signer, err := twin.NewSigner(keys[i])
		if err != nil {
			tb.Fatal(err)
		}
		feed, err := twin.StartRevocationFeed(twin.FeedConfig{Conn: nc, Signer: signer})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(feed.Close)
		g.Revocations().OnRevoke(func(ids ...string) { _ = feed.RevokeAgents(ids...) })
		g.Revocations().OnHear(feed.RememberAgents)
		tb.Cleanup(func() { g.Revocations().OnRevoke(nil); g.Revocations().OnHear(nil) })
		name := names[i]
		b, err := cascade.New(cascade.Config{Conn: nc, Prefix: "zr", Node: name, Auth: auth, Revocations: g.Revocations(),
			Peers:  func() []string { return names },
			Timing: clustercast.Timing{StoreWait: 500 * time.Millisecond, RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond},
		})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(b.Close)
		c.guards = append(c.guards, g)
		c.cascades = append(c.cascades, b)
	}
	for i, srv := range gatewayServers {
		key, err := twin.GenerateSigner()
		if err != nil {
			tb.Fatal(err)
		}
		gw, err := gateway.New(gateway.Config{
			Twin: fmt.Sprint("twin-", i), Actuators: []twin.Actuator{{ID: "valve", Min: 0, Max: 10, MaxRate: 1, Risk: twin.RiskLow}},
			Conn: natstest.Connect(tb, srv.ClientURL()), RealmKeys: addrs, Signer: key,
		})
		if err != nil {
			tb.Fatal(err)
		}
		if err := gw.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(gw.Close)
		c.gateways = append(c.gateways, gw)
	}
	return c
}

// openGuard opens a node's agents.Guard on nc: its buckets, its mirror of
// the revocations.
func openGuard(ctx context.Context, nc *nats.Conn, recordKey []byte, roots *agents.RootSet) (*agents.Guard, error) {
	st, err := store.New(ctx, nc, store.Config{RecordKey: recordKey, WaitForJetStream: true})
	if err != nil {
		return nil, err
	}
	return agents.New(ctx, agents.Config{Store: st, Roots: roots})
}

// issue signs a root delegation for a fresh agent, issued by node 0.
func (c *cascadeRealm) issue(tb testing.TB) *agents.Chain {
	tb.Helper()
	_, holder, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	issuer := agents.KeySigner{Key: c.rootKey}
	now := time.Now().UTC()
	d, err := agents.PrepareRoot(agents.Grant{
		Owner: "av_0123456789abcdef0123456789abcdef", Agent: agents.EncodeAgentKey(holder.Public().(ed25519.PublicKey)),
		Actions: []string{agents.ActionCommandActuator}, Resources: []agents.Resource{{Kind: agents.KindTwin, ID: "twin-0"}},
		Limits:   agents.Limits{CommandsPerMinute: 10, MaxRisk: agents.RiskLow},
		IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}, issuer.Address())
	if err != nil {
		tb.Fatal(err)
	}
	ch, err := d.Sign(issuer)
	if err != nil {
		tb.Fatal(err)
	}
	return ch
}

// nodesRefuse reports whether every node's Guard refuses chain as
// revoked.
func (c *cascadeRealm) nodesRefuse(chain *agents.Chain) bool {
	for _, g := range c.guards {
		if agents.ReasonOf(g.Revocations().Check(chain)) != agents.ReasonRevoked {
			return false
		}
	}
	return true
}

// gatewaysRefuse reports whether every gateway refuses grants naming
// chain's root.
func (c *cascadeRealm) gatewaysRefuse(chain *agents.Chain) bool {
	for _, gw := range c.gateways {
		if !gw.AgentRevoked(chain.Root().ID) {
			return false
		}
	}
	return true
}
