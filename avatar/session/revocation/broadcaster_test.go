package revocation

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

var testRecordKey = []byte("zerorealm test record key 32 by!")

const testPrefix = "zr"

// node is one realm node's share of the revocation path: its session
// manager, its revocation feed and its broadcaster.
type node struct {
	name     string
	sessions *session.Manager
	feed     <-chan session.Revocation
	b        *Broadcaster
	refused  atomic.Int32
}

func startNode(t testing.TB, url, name string, peers ...string) *node {
	t.Helper()
	return startNodeWith(t, url, name, func(*Config) {}, peers...)
}

// startNodeWith is startNode with changes to the broadcaster's Config.
func startNodeWith(t testing.TB, url, name string, change func(*Config), peers ...string) *node {
	t.Helper()
	ctx := context.Background()
	nc := natstest.Connect(t, url)
	st, err := store.New(ctx, nc, store.Config{RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.New(ctx, st, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := m.Revocations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	auth, err := clustermsg.New(testRecordKey)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, sessions: m, feed: feed}
	cfg := Config{Conn: nc, Prefix: testPrefix, Node: name, Auth: auth, Sessions: m,
		Peers:     func() []string { return peers },
		RetryMin:  10 * time.Millisecond,
		RetryMax:  50 * time.Millisecond,
		OnRefused: func(string, error) { n.refused.Add(1) },
	}
	change(&cfg)
	n.b, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.b.Close)
	return n
}

func revocationOf(s session.Session, reason string) session.Revocation {
	return session.Revocation{SessionID: s.ID, Avatar: s.Avatar, Reason: reason, At: time.Now(), Expires: s.Expires}
}

func receive(t *testing.T, ch <-chan session.Revocation) session.Revocation {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no revocation delivered within 10s")
	}
	return session.Revocation{}
}

// TestRevokeDeniesOnEveryNode: a revocation through node a is refused on
// node b as soon as Revoke returns, and delivered by b's feed; the answer
// counts both nodes and says it is stored.
func TestRevokeDeniesOnEveryNode(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	a := startNode(t, srv.ClientURL(), "a", "b")
	b := startNode(t, srv.ClientURL(), "b", "a")
	token, s, err := a.sessions.Create(ctx, "ada", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.sessions.AuthenticateCached(ctx, token); err != nil {
		t.Fatal(err)
	}
	out, err := a.b.Revoke(ctx, []session.Revocation{revocationOf(s, "signed out")}, func(ctx context.Context) error {
		return a.sessions.Revoke(ctx, s.ID, "signed out")
	})
	if err != nil {
		t.Fatal(err)
	}
	if out != (Outcome{NodesTold: 2, NodesLive: 2, Stored: true}) {
		t.Fatalf("Revoke = %+v; want both nodes told and stored", out)
	}
	for _, n := range []*node{a, b} {
		if _, err := n.sessions.AuthenticateCached(ctx, token); !errors.Is(err, session.ErrRevoked) {
			t.Errorf("node %s after Revoke: %v; want ErrRevoked", n.name, err)
		}
	}
	if r := receive(t, b.feed); r.SessionID != s.ID || r.Reason != "signed out" {
		t.Fatalf("b's feed delivered %+v", r)
	}
}

// TestForgedMessagesChangeNothing: a notice not signed under the cluster
// key denies nothing, and an acknowledgement not signed under it is not
// counted; both are reported.
func TestForgedMessagesChangeNothing(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	a := startNode(t, srv.ClientURL(), "a", "b", "ghost")
	b := startNode(t, srv.ClientURL(), "b", "a")
	token, s, err := b.sessions.Create(ctx, "ada", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := clustermsg.New([]byte("not the cluster's record key....."))
	if err != nil {
		t.Fatal(err)
	}
	data, err := encodeNotice("a", []session.Revocation{revocationOf(s, "forged")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rogue := natstest.Connect(t, srv.ClientURL())
	unsigned := &nats.Msg{Subject: testPrefix + ".sessions.revoked", Data: data, Header: nats.Header{nodeHeader: {"a"}}}
	forged := &nats.Msg{Subject: unsigned.Subject, Data: data, Header: nats.Header{nodeHeader: {"a"}}}
	wrongKey.Sign(forged, forged.Subject, time.Now())
	for _, m := range []*nats.Msg{unsigned, forged} {
		if err := rogue.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "b to refuse both notices", func() bool { return b.refused.Load() == 2 })
	if _, err := b.sessions.Authenticate(ctx, token); err != nil {
		t.Fatalf("after forged notices the session = %v; want it live", err)
	}

	// A rogue "ghost" node answers every notice with an acknowledgement
	// under the wrong key: a's count leaves it out.
	sub, err := rogue.Subscribe(testPrefix+".sessions.revoked", func(m *nats.Msg) {
		reply := &nats.Msg{Subject: m.Reply, Data: []byte(`{"node":"ghost","denied":1}`), Header: nats.Header{nodeHeader: {"ghost"}}}
		wrongKey.Sign(reply, m.Reply, time.Now())
		_ = rogue.PublishMsg(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := rogue.Flush(); err != nil {
		t.Fatal(err)
	}
	out, err := a.b.Revoke(ctx, []session.Revocation{revocationOf(s, "signed out")}, func(ctx context.Context) error {
		return a.sessions.Revoke(ctx, s.ID, "signed out")
	})
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

// TestStoreRetriedUntilStored: a store that fails answers Stored false at
// once, and the background attempts go on until it succeeds.
func TestStoreRetriedUntilStored(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	a := startNode(t, srv.ClientURL(), "a")
	token, s, err := a.sessions.Create(ctx, "ada", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := 0
	out, err := a.b.Revoke(ctx, []session.Revocation{revocationOf(s, "signed out")}, func(ctx context.Context) error {
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n < 4 {
			return store.ErrUnavailable
		}
		return a.sessions.Revoke(ctx, s.ID, "signed out")
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Stored || out.NodesTold != 1 || out.NodesLive != 1 {
		t.Fatalf("Revoke = %+v; want not stored yet, this node told", out)
	}
	if _, err := a.sessions.Authenticate(ctx, token); !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("denied session = %v; want ErrRevoked", err)
	}
	waitFor(t, "the revocation to be stored", func() bool {
		got, err := a.sessions.Get(ctx, s.ID)
		return err == nil && got.Revoked
	})
	waitFor(t, "no attempt left", func() bool { return a.b.Pending() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if attempts != 4 {
		t.Fatalf("%d store attempts; want 4", attempts)
	}
}

// TestToldNodeStoresWhatItsMakerCouldNot: node a signs a session out
// while it cannot store (its attempts fail) and stops before they
// succeed; node b, told and acknowledging, stores the revocation itself
// RedriveAfter later (Config.Redrive), once, so it is not lost with a.
func TestToldNodeStoresWhatItsMakerCouldNot(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	a := startNode(t, srv.ClientURL(), "a", "b")
	var redriven atomic.Int32
	var b *node
	b = startNodeWith(t, srv.ClientURL(), "b", func(cfg *Config) {
		cfg.RedriveAfter = 50 * time.Millisecond
		cfg.Redrive = func(ctx context.Context, rev session.Revocation) error {
			redriven.Add(1)
			return b.sessions.Revoke(ctx, rev.SessionID, rev.Reason)
		}
	}, "a")
	_, s, err := a.sessions.Create(ctx, "ada", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.b.Revoke(ctx, []session.Revocation{revocationOf(s, "signed out")}, func(context.Context) error {
		return store.ErrUnavailable
	})
	if err != nil {
		t.Fatal(err)
	}
	if out != (Outcome{NodesTold: 2, NodesLive: 2, Stored: false}) {
		t.Fatalf("Revoke = %+v; want both nodes told, not stored", out)
	}
	a.b.Close() // a stops: its background attempts end with it
	waitFor(t, "node b to store the revocation", func() bool {
		got, err := b.sessions.Get(ctx, s.ID)
		return err == nil && got.Revoked && got.RevokedReason == "signed out"
	})
	waitFor(t, "b's attempts to end", func() bool { return b.b.Pending() == 0 })
	if n := redriven.Load(); n != 1 {
		t.Fatalf("b re-drove the revocation %d times; want once", n)
	}
}

// TestRevokeRefusesBadRevocation changes nothing and tells nobody.
func TestRevokeRefusesBadRevocation(t *testing.T) {
	srv := natstest.RunServer(t)
	a := startNode(t, srv.ClientURL(), "a", "b")
	b := startNode(t, srv.ClientURL(), "b", "a")
	_, err := a.b.Revoke(context.Background(), []session.Revocation{{SessionID: "nope", Expires: time.Now().Add(time.Hour)}}, func(context.Context) error {
		t.Error("store called for a refused revocation")
		return nil
	})
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("Revoke of a malformed session ID = %v; want session.ErrInvalidArgument", err)
	}
	select {
	case r := <-b.feed:
		t.Fatalf("b heard %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	auth, _ := clustermsg.New(testRecordKey)
	good := Config{Conn: nc, Prefix: "zr", Node: "a", Auth: auth, Sessions: &session.Manager{}}
	for name, mutate := range map[string]func(*Config){
		"no conn":        func(c *Config) { c.Conn = nil },
		"no node":        func(c *Config) { c.Node = "" },
		"negative wait":  func(c *Config) { c.AckWait = -time.Second },
		"retry inverted": func(c *Config) { c.RetryMin, c.RetryMax = time.Second, time.Millisecond },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%s) = %v; want ErrInvalidConfig", name, err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
