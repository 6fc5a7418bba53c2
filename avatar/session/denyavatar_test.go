package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDenyAvatarEndsEverySessionBeforeIt: "sign out everywhere" denied on
// this node refuses every session of the avatar created up to its time,
// cached or read, with its reason, while the store still holds them live;
// another avatar's sessions and the avatar's sessions created after it
// work; it ends once the sessions it covers would have expired, and
// bad input changes nothing.
func TestDenyAvatarEndsEverySessionBeforeIt(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now})
	if _, err := m.Revocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	first, s1 := mustCreate(t, m, "ada")
	second, s2 := mustCreate(t, m, "ada")
	other, _ := mustCreate(t, m, "bob")
	if _, err := m.AuthenticateCached(ctx, first); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	at := clock.Now()
	for _, bad := range []AvatarRevocation{
		{Avatar: "", Reason: "x", At: at},
		{Avatar: "ada", Reason: "x", At: at.Add(time.Hour)},
		{Avatar: "ada", Reason: "x", At: at.Add(-48 * time.Hour)},
	} {
		if err := m.DenyAvatar(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("DenyAvatar(%+v) = %v; want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := m.Authenticate(ctx, first); err != nil {
		t.Fatalf("a refused denial changed something: %v", err)
	}
	if err := m.DenyAvatar(AvatarRevocation{Avatar: "ada", Reason: "signed out everywhere", At: at}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	later, _ := mustCreate(t, m, "ada")
	for name, call := range map[string]func() error{
		"AuthenticateCached of a cached session": func() error { _, err := m.AuthenticateCached(ctx, first); return err },
		"Authenticate of another session":        func() error { _, err := m.Authenticate(ctx, second); return err },
		"Touch":                                  func() error { _, err := m.Touch(ctx, s1.ID); return err },
	} {
		var serr *Error
		if err := call(); !errors.As(err, &serr) || !errors.Is(err, ErrRevoked) || serr.Reason != "signed out everywhere" || serr.Avatar != "ada" {
			t.Errorf("%s after sign-out everywhere = %v; want ErrRevoked (signed out everywhere)", name, err)
		}
	}
	if got, err := m.Get(ctx, s2.ID); err != nil || got.Revoked {
		t.Fatalf("the store's record = %+v, %v; want it still live (the denial came first)", got, err)
	}
	for name, token := range map[string]string{"bob's session": other, "ada's session created after": later} {
		if _, err := m.Authenticate(ctx, token); err != nil {
			t.Errorf("%s: %v; want it live", name, err)
		}
	}
	// Past the lifetime of every session it covered, the denial is gone
	// with them.
	clock.Advance(m.lifetime)
	if _, ok := m.avatarsDenied.get("ada", clock.Now()); ok {
		t.Fatal("the denial outlived every session it covers")
	}
}

// TestAvatarRevocationKeepsAnEarlierSessionRevocationsReason: a session
// revoked on its own (denied here, not stored yet), then every session of
// its avatar: whichever store attempt lands first, the session's record
// keeps the reason of the revocation made first, and the avatar's other
// sessions the avatar-wide one. (Sign-out and "sign out everywhere" made
// while the sessions bucket has no leader are stored in no set order once
// it has one.)
func TestAvatarRevocationKeepsAnEarlierSessionRevocationsReason(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now})
	_, one := mustCreate(t, m, "ada")
	_, other := mustCreate(t, m, "ada")
	clock.Advance(time.Second)
	if err := m.Deny(Revocation{SessionID: one.ID, Avatar: "ada", Reason: "revoked by its avatar", At: clock.Now(), Expires: one.Expires}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	// The avatar-wide revocation's store lands first.
	if _, err := m.RevokeAvatarUntil(ctx, "ada", "signed out everywhere", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, one.ID, "revoked by its avatar"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{one.ID: "revoked by its avatar", other.ID: "signed out everywhere"} {
		if got, err := m.Get(ctx, id); err != nil || !got.Revoked || got.RevokedReason != want {
			t.Errorf("stored %+v, %v; want revoked, %q", got, err, want)
		}
	}
}
