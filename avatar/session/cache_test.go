package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAuthenticateCached checks what the cache may and may not serve: a
// revocation through this node or, once the feed delivered it, through
// another node is refused at once; a change the feed does not report is
// served stale for at most CacheFor; touches still happen; and without a
// feed nothing is cached.
func TestAuthenticateCached(t *testing.T) {
	clock := newFakeClock()
	cfg := Config{Now: clock.Now, Lifetime: time.Hour, IdleTimeout: time.Hour, TouchEvery: time.Minute}
	a, nc := newTestManager(t, cfg)
	b := newManagerOn(t, nc, cfg) // another node on the same store
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// No feed on b: every call reads the store.
	token, s := mustCreate(t, a, "av_a")
	if _, err := b.AuthenticateCached(ctx, token); err != nil {
		t.Fatalf("AuthenticateCached = %v", err)
	}
	if err := a.Revoke(ctx, s.ID, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AuthenticateCached(ctx, token); !errors.Is(err, ErrRevoked) {
		t.Fatalf("AuthenticateCached without a feed after a revocation = %v, want ErrRevoked", err)
	}

	feed, err := b.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := receive(t, feed); r.SessionID != s.ID {
		t.Fatalf("replayed revocation = %+v, want %s", r, s.ID)
	}

	t.Run("revoked on another node", func(t *testing.T) {
		token, s := mustCreate(t, a, "av_b")
		if _, err := b.AuthenticateCached(ctx, token); err != nil {
			t.Fatalf("AuthenticateCached = %v", err)
		}
		if err := a.Revoke(ctx, s.ID, "elsewhere"); err != nil {
			t.Fatal(err)
		}
		if r := receive(t, feed); r.SessionID != s.ID {
			t.Fatalf("revocation = %+v, want %s", r, s.ID)
		}
		if _, err := b.AuthenticateCached(ctx, token); !errors.Is(err, ErrRevoked) {
			t.Fatalf("AuthenticateCached after the feed delivered the revocation = %v, want ErrRevoked", err)
		}
	})
	t.Run("revoked on this node", func(t *testing.T) {
		token, s := mustCreate(t, a, "av_c")
		if _, err := b.AuthenticateCached(ctx, token); err != nil {
			t.Fatalf("AuthenticateCached = %v", err)
		}
		if err := b.Revoke(ctx, s.ID, "here"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AuthenticateCached(ctx, token); !errors.Is(err, ErrRevoked) {
			t.Fatalf("AuthenticateCached right after this node's Revoke = %v, want ErrRevoked", err)
		}
		receive(t, feed)
	})
	t.Run("stale for at most CacheFor", func(t *testing.T) {
		token, s := mustCreate(t, a, "av_d")
		if _, err := b.AuthenticateCached(ctx, token); err != nil {
			t.Fatalf("AuthenticateCached = %v", err)
		}
		// Replace the record behind the cache's back with one the token
		// no longer matches, a change no revocation announces.
		rec, rev, err := a.load(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		rec.Hash = make([]byte, len(rec.Hash))
		value, _ := rec.marshal()
		if _, err := a.sessions.Update(ctx, s.ID, value, rev); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AuthenticateCached(ctx, token); err != nil {
			t.Fatalf("AuthenticateCached within CacheFor = %v, want the cached session", err)
		}
		clock.Advance(CacheFor)
		if _, err := b.AuthenticateCached(ctx, token); !errors.Is(err, ErrInvalidSession) {
			t.Fatalf("AuthenticateCached after CacheFor = %v, want ErrInvalidSession", err)
		}
	})
	t.Run("touches still happen", func(t *testing.T) {
		token, s := mustCreate(t, a, "av_e")
		if _, err := b.AuthenticateCached(ctx, token); err != nil {
			t.Fatalf("AuthenticateCached = %v", err)
		}
		clock.Advance(time.Minute)
		if _, err := b.AuthenticateCached(ctx, token); err != nil {
			t.Fatalf("AuthenticateCached = %v", err)
		}
		got, err := a.Get(ctx, s.ID)
		if err != nil || !got.LastSeen.Equal(clock.Now()) {
			t.Fatalf("LastSeen after TouchEvery = %v, %v; want %v", got.LastSeen, err, clock.Now())
		}
	})
}
