package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

const prefix = "zr"

// foundry is the reference scene's machines, as the realm hands them over.
var foundry = []twin.Twin{
	{ID: "press-1", Zone: "press-bay", Actuators: []twin.Actuator{
		{ID: "ram", Unit: "mm", Min: 0, Max: 400, MaxRate: 50, Risk: twin.RiskHigh},
		{ID: "pressure", Unit: "bar", Min: 0, Max: 250, MaxRate: 10, Risk: twin.RiskCritical},
	}},
	{ID: "conveyor-1", Zone: "conveyor-line", Actuators: []twin.Actuator{
		{ID: "belt-speed", Unit: "m/s", Min: 0, Max: 2.5, MaxRate: 0.5, Risk: twin.RiskLow},
	}},
	{ID: "robot-1", Zone: "robot-cell", Actuators: []twin.Actuator{
		{ID: "base-joint", Unit: "deg", Min: -170, Max: 170, MaxRate: 90, Risk: twin.RiskHigh},
		{ID: "gripper", Unit: "mm", Min: 0, Max: 120, MaxRate: 60, Risk: twin.RiskMedium},
	}},
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testClock is a settable clock that otherwise follows the wall clock.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// bench is a realm's side (signer, feed, dispatcher) and one real gateway
// per twin, on an embedded nats-server that authenticates the gateways
// with their nkeys and confines each to its twin.
type bench struct {
	t        testing.TB
	emb      *natsembed.Embedded
	realm    *twin.Signer
	feed     *twin.RevocationFeed
	reg      *twin.Registry
	disp     *twin.Dispatcher
	gateways map[string]*gateway.Gateway
	conns    map[string]*nats.Conn
	keys     map[string]common.Address
	clock    *testClock
}

type benchOptions struct {
	heartbeat   time.Duration
	feedTimeout time.Duration
	tcp         bool // gateways connect over TCP, so a test can cut them off
}

func newBench(t testing.TB, o benchOptions) *bench {
	t.Helper()
	if o.heartbeat == 0 {
		o.heartbeat = 100 * time.Millisecond
	}
	if o.feedTimeout == 0 {
		o.feedTimeout = 2 * time.Second
	}
	ctx := context.Background()
	b := &bench{t: t, gateways: map[string]*gateway.Gateway{}, conns: map[string]*nats.Conn{}, keys: map[string]common.Address{}, clock: &testClock{}}
	seeds := map[string]nkeys.KeyPair{}
	var users []natsembed.GatewayUser
	for _, tw := range foundry {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seeds[tw.ID] = kp
		users = append(users, natsembed.GatewayUser{Twin: tw.ID, NKey: pub})
	}
	cfg := natsembed.Config{DataDir: t.TempDir(), Prefix: prefix, Gateways: users}
	if o.tcp {
		cfg.ClientListen = "127.0.0.1:0"
	}
	var err error
	b.emb, err = natsembed.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.emb.Shutdown(context.Background()) })
	if b.realm, err = twin.GenerateSigner(); err != nil {
		t.Fatal(err)
	}
	if b.reg, err = twin.NewRegistry(foundry); err != nil {
		t.Fatal(err)
	}
	for _, tw := range foundry {
		kp := seeds[tw.ID]
		pub, _ := kp.PublicKey()
		var nc *nats.Conn
		if o.tcp {
			nc, err = nats.Connect(b.emb.ClientURL(), nats.Nkey(pub, kp.Sign), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
		} else {
			nc, err = b.emb.ConnectInProcess("gateway-"+tw.ID, nats.Nkey(pub, kp.Sign))
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		key, err := twin.GenerateSigner()
		if err != nil {
			t.Fatal(err)
		}
		g, err := gateway.New(gateway.Config{
			Twin: tw.ID, Actuators: tw.Actuators, Conn: nc, Prefix: prefix, RealmKeys: []common.Address{b.realm.Address()},
			Signer: key, FeedTimeout: o.feedTimeout, Logger: discard(), Now: b.clock.Now, TelemetryEvery: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		b.gateways[tw.ID], b.conns[tw.ID], b.keys[tw.ID] = g, nc, key.Address()
	}
	b.feed, err = twin.StartRevocationFeed(twin.FeedConfig{Conn: b.emb.Conn(), Prefix: prefix, Signer: b.realm, Heartbeat: o.heartbeat, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.feed.Close)
	b.disp, err = twin.NewDispatcher(twin.DispatcherConfig{
		Conn: b.emb.Conn(), Prefix: prefix, Signer: b.realm, Logger: discard(),
		GatewayKey: func(id string) (common.Address, bool) { a, ok := b.keys[id]; return a, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	b.waitFresh()
	return b
}

// waitFresh waits until every gateway has heard the revocation feed.
func (b *bench) waitFresh() {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, g := range b.gateways {
		for g.FeedAge() < 0 || g.FeedAge() > time.Second {
			if time.Now().After(deadline) {
				b.t.Fatal("gateways never heard the revocation feed")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (b *bench) command(twinID, actuatorID string, value float64, key string) twin.Command {
	b.t.Helper()
	c, err := twin.NewCommand(twinID, actuatorID, "av_ada", key, twin.CommandRequest{Op: twin.OpSet, Value: &value})
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// request sends raw bytes on an actuator's command subject, as the realm
// (or an attacker holding the realm's connection) could, and decodes the
// gateway's acknowledgement.
func (b *bench) request(twinID, actuatorID string, data []byte) twin.SignedAck {
	b.t.Helper()
	m, err := b.emb.Conn().Request(twin.CommandSubject(prefix, twinID, actuatorID), data, 5*time.Second)
	if err != nil {
		b.t.Fatalf("request to %s/%s: %v", twinID, actuatorID, err)
	}
	sa, err := twin.DecodeSignedAck(m.Data)
	if err != nil {
		b.t.Fatalf("acknowledgement %s: %v", m.Data, err)
	}
	if signer, err := sa.Signer(); err != nil || signer != b.keys[twinID] {
		b.t.Fatalf("acknowledgement signed by %v (%v), want twin %s's gateway key", signer, err, twinID)
	}
	return sa
}
