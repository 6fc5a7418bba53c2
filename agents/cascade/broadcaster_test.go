package cascade

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/clustercast"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

var testRecordKey = []byte("zerorealm test record key 32 by!")

const (
	testPrefix = "zr"
	testOwner  = "av_0123456789abcdef0123456789abcdef"
)

// node is one realm node's share of an agent revocation: its Guard (and
// revocation mirror) and its broadcaster.
type node struct {
	guard   *agents.Guard
	b       *Broadcaster
	refused atomic.Int32
	told    chan string // what the mirror tells the gateways of (OnRevoke)
	heard   chan string // what it has them repeat (OnHear)
}

func startNode(t testing.TB, url, name string, roots *agents.RootSet, peers ...string) *node {
	t.Helper()
	ctx := context.Background()
	nc := natstest.Connect(t, url)
	st, err := store.New(ctx, nc, store.Config{RecordKey: testRecordKey, WaitForJetStream: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := agents.New(ctx, agents.Config{Store: st, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	auth, err := clustermsg.New(testRecordKey)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{guard: g, told: make(chan string, 64), heard: make(chan string, 64)}
	g.Revocations().OnRevoke(func(ids ...string) {
		for _, id := range ids {
			n.told <- id
		}
	})
	g.Revocations().OnHear(func(ids ...string) {
		for _, id := range ids {
			n.heard <- id
		}
	})
	n.b, err = New(Config{Conn: nc, Prefix: testPrefix, Node: name, Auth: auth, Revocations: g.Revocations(),
		Peers:     func() []string { return peers },
		Timing:    clustercast.Timing{StoreWait: 300 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, RedriveAfter: 200 * time.Millisecond},
		OnRefused: func(string, error) { n.refused.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.b.Close)
	return n
}

type testKeys struct {
	realm *ecdsa.PrivateKey
	roots *agents.RootSet
}

func newKeys(t testing.TB) testKeys {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{realm: k, roots: agents.NewRootSet(crypto.PubkeyToAddress(k.PublicKey))}
}

// issue signs a root delegation for a fresh agent, issued a second ago.
func (k testKeys) issue(t testing.TB) *agents.Chain {
	t.Helper()
	return k.issueAt(t, time.Now().UTC().Add(-time.Second))
}

func (k testKeys) issueAt(t testing.TB, now time.Time) *agents.Chain {
	t.Helper()
	_, holder, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := agents.KeySigner{Key: k.realm}
	d, err := agents.PrepareRoot(agents.Grant{
		Owner: testOwner, Agent: agents.EncodeAgentKey(holder.Public().(ed25519.PublicKey)),
		Actions: []string{agents.ActionCommandActuator}, Resources: []agents.Resource{{Kind: agents.KindTwin, ID: "press-line"}},
		Limits:   agents.Limits{CommandsPerMinute: 10, MaxRisk: agents.RiskLow},
		IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}, common.Address(signer.Address()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantRevoked(t testing.TB, n *node, c *agents.Chain, who string) {
	t.Helper()
	if err := n.guard.Revocations().Check(c); agents.ReasonOf(err) != agents.ReasonRevoked {
		t.Fatalf("%s checks the revoked chain: %v; want reason revoked", who, err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// passedOn waits until n's mirror passed id on to the gateways: told
// (its maker, or the change feed came first) or repeated (heard).
func passedOn(t testing.TB, n *node, id string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-n.told:
			if got == id {
				return
			}
		case got := <-n.heard:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("the mirror never passed %s on", id)
		}
	}
}

// TestRevokeDeniesOnEveryNodeAtOnce: a delegation revoked through node a
// is refused on node b as soon as Revoke returns, without waiting for the
// change feed; node a's mirror tells its gateways before Revoke returns,
// node b's passes it on too (to repeat it, or to tell it when the change
// feed came before the notice), neither twice; and the revocation is
// stored. So is an owner's.
func TestRevokeDeniesOnEveryNodeAtOnce(t *testing.T) {
	srv := natstest.RunServer(t)
	k := newKeys(t)
	a := startNode(t, srv.ClientURL(), "a", k.roots, "b")
	b := startNode(t, srv.ClientURL(), "b", k.roots, "a")
	c := k.issue(t)
	out, err := a.b.Revoke(t.Context(), c.Root().ID, testOwner, "revoked by its owner")
	if err != nil {
		t.Fatal(err)
	}
	if out != (Outcome{NodesTold: 2, NodesLive: 2, Stored: true}) {
		t.Fatalf("Revoke = %+v; want both nodes told and stored", out)
	}
	wantRevoked(t, a, c, "node a")
	wantRevoked(t, b, c, "node b")
	if got := <-a.told; got != c.Root().ID {
		t.Fatalf("node a told its gateways of %s; want %s", got, c.Root().ID)
	}
	passedOn(t, b, c.Root().ID)

	later := k.issue(t)
	if out, err := b.b.RevokeOwner(t.Context(), testOwner, testOwner, "signed out everywhere"); err != nil || out.NodesTold != 2 {
		t.Fatalf("RevokeOwner = %+v, %v; want both nodes told", out, err)
	}
	wantRevoked(t, a, later, "node a, after the owner's revocation")
	if got := <-b.told; got != testOwner {
		t.Fatalf("node b told its gateways of %s; want %s", got, testOwner)
	}
	passedOn(t, a, testOwner)

	// The store has both: a node started now refuses both chains.
	fresh := startNode(t, srv.ClientURL(), "c", k.roots)
	wantRevoked(t, fresh, c, "a node started after the revocation")
	wantRevoked(t, fresh, later, "a node started after the owner's revocation")
	// A delegation confirmed after the owner's revocation is not stopped.
	if err := fresh.guard.Revocations().Check(k.issueAt(t, time.Now().UTC().Add(2*time.Second))); err != nil {
		t.Fatalf("a delegation issued after the owner's revocation: %v", err)
	}
	// By now the change feeds brought both records to a and b (the
	// fresh node read them): neither mirror told of them again.
	if len(a.told)+len(b.told)+len(a.heard)+len(b.heard) != 0 {
		t.Fatal("a mirror told of a revocation twice (the change feed brought what a notice had)")
	}
}

// TestForgedNoticesRevokeNothing: a notice without the cluster's tag, one
// under another key, and one whose body names another node than its
// header are dropped and reported, revoking nothing; an acknowledgement
// under the wrong key is not counted.
func TestForgedNoticesRevokeNothing(t *testing.T) {
	srv := natstest.RunServer(t)
	k := newKeys(t)
	a := startNode(t, srv.ClientURL(), "a", k.roots, "b", "ghost")
	b := startNode(t, srv.ClientURL(), "b", k.roots, "a")
	c := k.issue(t)
	rev, err := b.guard.Revocations().Make(agents.KindDelegation, c.Root().ID, "mallory", "forged")
	if err != nil {
		t.Fatal(err)
	}
	data, err := encodeNotice("a", rev)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := clustermsg.New(testRecordKey)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := clustermsg.New([]byte("not the cluster's record key....."))
	if err != nil {
		t.Fatal(err)
	}
	subject := Subject(testPrefix)
	unsigned := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{clustercast.NodeHeader: {"a"}}}
	forged := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{clustercast.NodeHeader: {"a"}}}
	wrongKey.Sign(forged, subject, time.Now())
	// Signed with the cluster's key by node "ghost", but the body says a.
	misnamed := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{clustercast.NodeHeader: {"ghost"}}}
	auth.Sign(misnamed, subject, time.Now())
	rogue := natstest.Connect(t, srv.ClientURL())
	for _, m := range []*nats.Msg{unsigned, forged, misnamed} {
		if err := rogue.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "b to refuse the three notices", func() bool { return b.refused.Load() == 3 })
	if err := b.guard.Revocations().Check(c); err != nil {
		t.Fatalf("after forged notices node b checks the chain: %v; want it valid", err)
	}

	// A rogue "ghost" node acknowledges every notice under the wrong key.
	sub, err := rogue.Subscribe(subject, func(m *nats.Msg) {
		reply := &nats.Msg{Subject: m.Reply, Data: []byte(`{"node":"ghost","denied":1}`), Header: nats.Header{clustercast.NodeHeader: {"ghost"}}}
		wrongKey.Sign(reply, m.Reply, time.Now())
		_ = rogue.PublishMsg(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := rogue.Flush(); err != nil {
		t.Fatal(err)
	}
	out, err := a.b.Revoke(t.Context(), c.Root().ID, testOwner, "revoked by its owner")
	if err != nil {
		t.Fatal(err)
	}
	if out.NodesTold != 2 || out.NodesLive != 3 {
		t.Fatalf("Revoke = %+v; want 2 of 3 told (the ghost's forged acknowledgement not counted)", out)
	}
	if a.refused.Load() == 0 {
		t.Fatal("the forged acknowledgement was not reported")
	}
}

// TestToldNodeStoresWhatItsMakerCouldNot: node a's own store attempts end
// with it (closed before they succeed); node b, told, stores the
// revocation itself.
func TestToldNodeStoresWhatItsMakerCouldNot(t *testing.T) {
	srv := natstest.RunServer(t)
	k := newKeys(t)
	b := startNode(t, srv.ClientURL(), "b", k.roots, "a")
	c := k.issue(t)
	// Node a denies and tells, but its store never takes it: a mirror
	// whose Store fails, as a node whose bucket is gone would.
	auth, err := clustermsg.New(testRecordKey)
	if err != nil {
		t.Fatal(err)
	}
	failing := &failingStore{Revocations: b.guard.Revocations()}
	a, err := New(Config{Conn: natstest.Connect(t, srv.ClientURL()), Prefix: testPrefix, Node: "a", Auth: auth, Revocations: failing,
		Peers: func() []string { return []string{"b"} }, Timing: clustercast.Timing{StoreWait: 50 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Revoke(t.Context(), c.Root().ID, testOwner, "revoked by its owner")
	if err != nil {
		t.Fatal(err)
	}
	if out.Stored || out.NodesTold != 2 || a.Pending() != 1 {
		t.Fatalf("Revoke = %+v with %d pending; want told, not stored, retrying", out, a.Pending())
	}
	a.Close()
	if failing.attempts.Load() < 1 {
		t.Fatal("node a never tried to store")
	}
	waitFor(t, "node b to store the revocation", func() bool { return b.b.Pending() == 0 })
	fresh := startNode(t, srv.ClientURL(), "c", k.roots)
	wantRevoked(t, fresh, c, "a node started after node b stored it")
}

// failingStore is a mirror whose store cannot be written.
type failingStore struct {
	*agents.Revocations
	attempts atomic.Int32
}

func (f *failingStore) Store(context.Context, agents.Revocation) error {
	f.attempts.Add(1)
	return store.ErrUnavailable
}

func TestNewAndRevokeRefuseBadInput(t *testing.T) {
	srv := natstest.RunServer(t)
	k := newKeys(t)
	a := startNode(t, srv.ClientURL(), "a", k.roots)
	auth, _ := clustermsg.New(testRecordKey)
	nc := natstest.Connect(t, srv.ClientURL())
	for _, cfg := range []Config{
		{Prefix: testPrefix, Node: "x", Auth: auth, Revocations: a.guard.Revocations()},
		{Conn: nc, Node: "x", Auth: auth, Revocations: a.guard.Revocations()},
		{Conn: nc, Prefix: testPrefix, Node: "x", Revocations: a.guard.Revocations()},
		{Conn: nc, Prefix: testPrefix, Node: "x", Auth: auth, Revocations: a.guard.Revocations(), Timing: clustercast.Timing{AckWait: -1}},
		{Conn: nc, Prefix: testPrefix, Node: "x", Auth: auth, Revocations: a.guard.Revocations(), Timing: clustercast.Timing{RetryMin: time.Second, RetryMax: time.Millisecond}},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
	}
	for _, id := range []string{"", "dg_XYZ", "ag_0123456789abcdef0123456789abcdef"} {
		if _, err := a.b.Revoke(t.Context(), id, testOwner, "x"); !errors.Is(err, agents.ErrMalformed) {
			t.Errorf("Revoke(%q) = %v; want agents.ErrMalformed", id, err)
		}
	}
	if _, err := a.b.RevokeOwner(t.Context(), "Not An Owner!", "x", "x"); !errors.Is(err, agents.ErrMalformed) {
		t.Errorf("RevokeOwner of a bad owner = %v; want agents.ErrMalformed", err)
	}
	if a.b.Pending() != 0 {
		t.Fatal("a refused revocation left a store attempt")
	}
}
