package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDenyRefusesWithoutTheStore: a denied session is refused at once by
// Authenticate, AuthenticateCached and Touch with the denial's reason, the
// store still holding it live, and every Revocations feed delivers the
// denial. When the store's revocation arrives, the record decides again.
func TestDenyRefusesWithoutTheStore(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestManager(t, Config{})
	feed, err := m.Revocations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	token, s := mustCreate(t, m, "ada")
	if _, err := m.AuthenticateCached(ctx, token); err != nil {
		t.Fatal(err)
	}
	rev := Revocation{SessionID: s.ID, Avatar: "ada", Reason: "signed out", Expires: s.Expires}
	if err := m.Deny(rev); err != nil {
		t.Fatalf("Deny: %v", err)
	}
	calls := map[string]func() error{
		"Authenticate":       func() error { _, err := m.Authenticate(ctx, token); return err },
		"AuthenticateCached": func() error { _, err := m.AuthenticateCached(ctx, token); return err },
		"Touch":              func() error { _, err := m.Touch(ctx, s.ID); return err },
	}
	for name, call := range calls {
		var serr *Error
		if err := call(); !errors.As(err, &serr) || !errors.Is(err, ErrRevoked) || serr.Reason != "signed out" || serr.Avatar != "ada" {
			t.Errorf("%s of a denied session = %v; want ErrRevoked (signed out)", name, err)
		}
	}
	if got, err := m.Get(ctx, s.ID); err != nil || got.Revoked {
		t.Fatalf("the store's record = %+v, %v; want it still live (the denial came first)", got, err)
	}
	if r := receive(t, feed); r.SessionID != s.ID || r.Reason != "signed out" || !r.Expires.Equal(s.Expires) {
		t.Fatalf("feed delivered %+v; want the denial", r)
	}
	if _, ok := m.Recall(token); ok {
		t.Error("Recall of a denied session succeeded")
	}

	// The store's revocation takes over, with its own reason.
	if err := m.Revoke(ctx, s.ID, "stored reason"); err != nil {
		t.Fatal(err)
	}
	var serr *Error
	if _, err := m.Authenticate(ctx, token); !errors.As(err, &serr) || serr.Reason != "stored reason" {
		t.Fatalf("Authenticate after the store's revocation = %v; want its reason", err)
	}
}

// TestDenyRefusesBadInput: Deny changes nothing for a malformed ID or an
// expiry in the past or beyond a session's lifetime.
func TestDenyRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now, Lifetime: time.Hour})
	token, s := mustCreate(t, m, "ada")
	for name, rev := range map[string]Revocation{
		"malformed ID":    {SessionID: "not-an-id", Expires: s.Expires},
		"expired":         {SessionID: s.ID, Expires: clock.Now()},
		"beyond lifetime": {SessionID: s.ID, Expires: clock.Now().Add(2 * time.Hour)},
	} {
		if err := m.Deny(rev); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Deny(%s) = %v; want ErrInvalidArgument", name, err)
		}
	}
	if _, err := m.Authenticate(ctx, token); err != nil {
		t.Fatalf("a session after refused denials = %v; want it live", err)
	}
}

// TestDenyCannotBeWithdrawn: a later denial with an earlier expiry does not
// shorten the first; nothing makes a denied session live again.
func TestDenyCannotBeWithdrawn(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now, IdleTimeout: 10 * time.Hour, Lifetime: 12 * time.Hour})
	token, s := mustCreate(t, m, "ada")
	if err := m.Deny(Revocation{SessionID: s.ID, Reason: "first", Expires: s.Expires}); err != nil {
		t.Fatal(err)
	}
	if err := m.Deny(Revocation{SessionID: s.ID, Reason: "second", Expires: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	var serr *Error
	if _, err := m.Authenticate(ctx, token); !errors.As(err, &serr) || serr.Reason != "first" {
		t.Fatalf("Authenticate after a shorter second denial = %v; want refused for the first reason", err)
	}
}

// TestRecall: a session this node authenticated is recalled from memory by
// its token alone, never with a wrong token, and not once revoked.
func TestRecall(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestManager(t, Config{})
	if _, err := m.Revocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	token, s := mustCreate(t, m, "ada")
	other, _ := mustCreate(t, m, "bob")
	if _, ok := m.Recall(token); ok {
		t.Fatal("Recall of a session never authenticated here succeeded")
	}
	if _, err := m.AuthenticateCached(ctx, token); err != nil {
		t.Fatal(err)
	}
	if got, ok := m.Recall(token); !ok || got.ID != s.ID || got.Avatar != "ada" {
		t.Fatalf("Recall = %+v, %v; want the session", got, ok)
	}
	if _, ok := m.Recall(other); ok {
		t.Fatal("Recall of another token succeeded")
	}
	forged := token[:len(token)-2] + "AA"
	if _, ok := m.Recall(forged); ok {
		t.Fatal("Recall of an altered token succeeded")
	}
	if err := m.Revoke(ctx, s.ID, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Recall(token); ok {
		t.Fatal("Recall of a revoked session succeeded")
	}
}

// TestAvatarRevocations lists the unexpired sessions of an avatar from its
// index.
func TestAvatarRevocations(t *testing.T) {
	m, _ := newTestManager(t, Config{})
	_, a := mustCreate(t, m, "ada")
	_, b := mustCreate(t, m, "ada")
	mustCreate(t, m, "bob")
	revs, err := m.AvatarRevocations(context.Background(), "ada", "everywhere")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range revs {
		got[r.SessionID] = r.Avatar == "ada" && r.Reason == "everywhere" && !r.Expires.IsZero()
	}
	if len(got) != 2 || !got[a.ID] || !got[b.ID] {
		t.Fatalf("AvatarRevocations = %+v; want ada's two sessions", revs)
	}
}
