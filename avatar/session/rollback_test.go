package session

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

// TestRevokedSessionPutBackStaysRevoked: an attacker with full NATS access
// puts a session's genuine live record back after its revocation (within
// the store's clock skew, so the store's own check cannot tell). The node
// that revoked it, and a node whose revocation feed heard it, refuse it;
// a forged record is refused as unknown.
func TestRevokedSessionPutBackStaysRevoked(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	a := newManagerOn(t, natstest.Connect(t, srv.ClientURL()), Config{})
	b := newManagerOn(t, natstest.Connect(t, srv.ClientURL()), Config{})
	feed, err := b.Revocations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	token, s := mustCreate(t, a, "ada")

	js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := js.KeyValue(ctx, a.sessions.Name())
	if err != nil {
		t.Fatal(err)
	}
	live, err := raw.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, s.ID, "stolen"); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, feed); r.SessionID != s.ID {
		t.Fatalf("b heard %+v", r)
	}
	if _, err := raw.Put(ctx, s.ID, live.Value()); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*Manager{"revoking node": a, "node that heard it": b} {
		_, err := m.Authenticate(ctx, token)
		var serr *Error
		if !errors.As(err, &serr) || !errors.Is(err, ErrRevoked) || serr.Reason != ReasonRolledBack {
			t.Errorf("%s: a revoked session put back authenticates with %v; want ErrRevoked (%s)", name, err, ReasonRolledBack)
		}
	}

	// A record the attacker wrote itself does not verify: unknown.
	if _, err := raw.Put(ctx, s.ID, []byte(`{"hash":"AAAA","avatar":"ada"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, token); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("a forged record authenticates with %v; want ErrInvalidSession", err)
	}
	if _, err := a.sessions.Get(ctx, s.ID); !errors.Is(err, store.ErrTampered) {
		t.Errorf("the forged record reads %v; want store.ErrTampered", err)
	}
}

// TestTamperedIndexFailsSignOutEverywhere: an index the attacker altered
// hides the avatar's sessions; "sign out everywhere" fails instead of
// reporting that there was nothing to revoke.
func TestTamperedIndexFailsSignOutEverywhere(t *testing.T) {
	ctx := context.Background()
	m, nc := newTestManager(t, Config{})
	mustCreate(t, m, "ada")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := js.KeyValue(ctx, m.index.Name())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Put(ctx, indexKey("ada"), []byte("[]")); err != nil {
		t.Fatal(err)
	}
	if n, err := m.RevokeAvatar(ctx, "ada", "stolen"); !errors.Is(err, store.ErrTampered) {
		t.Fatalf("RevokeAvatar over a tampered index = %d, %v; want store.ErrTampered", n, err)
	}
}
