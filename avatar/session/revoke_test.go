package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

func TestRevoke(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now})
	ctx := context.Background()
	token, s := mustCreate(t, m, "av_1")
	keep, _ := mustCreate(t, m, "av_1")

	clock.Advance(time.Second)
	revokedAt := clock.Now()
	if err := m.Revoke(ctx, s.ID, "cloned credential detected"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	_, err := m.Authenticate(ctx, token)
	var se *Error
	if !errors.Is(err, ErrRevoked) || !errors.As(err, &se) {
		t.Fatalf("Authenticate(revoked) error = %v, want ErrRevoked as *Error", err)
	}
	if se.Reason != "cloned credential detected" || se.SessionID != s.ID || se.Avatar != "av_1" || !se.At.Equal(revokedAt) {
		t.Errorf("Authenticate(revoked) error = %+v, want reason %q, session %s, avatar av_1, at %v", se, "cloned credential detected", s.ID, revokedAt)
	}
	if _, err := m.Authenticate(ctx, keep); err != nil {
		t.Errorf("Authenticate(the avatar's other session) = %v, want it untouched", err)
	}

	// Idempotent: nothing is written again, the first reason stays.
	rev := revision(t, m, s.ID)
	clock.Advance(time.Second)
	if err := m.Revoke(ctx, s.ID, "signed out"); err != nil {
		t.Errorf("Revoke again: %v, want nil", err)
	}
	if got := revision(t, m, s.ID); got != rev {
		t.Errorf("record revision after a repeated Revoke = %d, want %d", got, rev)
	}
	got, err := m.Get(ctx, s.ID)
	if err != nil || !got.Revoked || got.RevokedReason != "cloned credential detected" || !got.RevokedAt.Equal(revokedAt) {
		t.Errorf("Get(revoked) = %+v, %v; want revoked at %v for the first reason", got, err, revokedAt)
	}

	_, _, unknown := newToken()
	for name, tc := range map[string]struct {
		id   string
		want error
	}{
		"unknown":   {unknown, ErrInvalidSession},
		"malformed": {"not-an-id", ErrInvalidSession},
		"uppercase": {"ABCDEF0123456789ABCDEF0123456789", ErrInvalidSession},
		"empty":     {"", ErrInvalidSession},
	} {
		t.Run(name, func(t *testing.T) {
			if err := m.Revoke(ctx, tc.id, "x"); !errors.Is(err, tc.want) {
				t.Errorf("Revoke(%q) error = %v, want %v", tc.id, err, tc.want)
			}
			if _, err := m.Get(ctx, tc.id); !errors.Is(err, tc.want) {
				t.Errorf("Get(%q) error = %v, want %v", tc.id, err, tc.want)
			}
		})
	}

	_, empty := mustCreate(t, m, "av_1")
	if err := m.Revoke(ctx, empty.ID, ""); err != nil {
		t.Fatalf("Revoke without a reason: %v", err)
	}
	if got, _ := m.Get(ctx, empty.ID); got.RevokedReason != ReasonUnspecified {
		t.Errorf("RevokedReason for an empty reason = %q, want %q", got.RevokedReason, ReasonUnspecified)
	}
}

func TestRevokeAvatar(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now, IdleTimeout: 10 * time.Minute})
	ctx := context.Background()

	idleToken, _ := mustCreate(t, m, "av_a") // idle by the time of revocation: not counted
	clock.Advance(11 * time.Minute)
	var mine []string
	for range 3 {
		token, _ := mustCreate(t, m, "av_a")
		mine = append(mine, token)
	}
	signedOut, s := mustCreate(t, m, "av_a")
	if err := m.Revoke(ctx, s.ID, "signed out"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	var theirs []string
	for range 2 {
		token, _ := mustCreate(t, m, "av_b")
		theirs = append(theirs, token)
	}

	n, err := m.RevokeAvatar(ctx, "av_a", "sign out everywhere")
	if err != nil || n != 3 {
		t.Fatalf("RevokeAvatar(av_a) = %d, %v; want 3, nil", n, err)
	}
	for i, token := range mine {
		var se *Error
		if _, err := m.Authenticate(ctx, token); !errors.As(err, &se) || se.Kind != ErrRevoked || se.Reason != "sign out everywhere" {
			t.Errorf("Authenticate(av_a session %d) error = %v, want ErrRevoked for %q", i, err, "sign out everywhere")
		}
	}
	var se *Error
	if _, err := m.Authenticate(ctx, signedOut); !errors.As(err, &se) || se.Reason != "signed out" {
		t.Errorf("Authenticate(already signed out) error = %v, want the first reason kept", err)
	}
	clock.Advance(-11 * time.Minute) // the idle one is still marked, in case a node's clock lags
	if _, err := m.Authenticate(ctx, idleToken); !errors.Is(err, ErrRevoked) {
		t.Errorf("Authenticate(idle session, clock set back) error = %v, want ErrRevoked", err)
	}
	clock.Advance(11 * time.Minute)
	for i, token := range theirs {
		if _, err := m.Authenticate(ctx, token); err != nil {
			t.Errorf("Authenticate(av_b session %d) = %v, want untouched", i, err)
		}
	}

	if n, err := m.RevokeAvatar(ctx, "av_a", "again"); err != nil || n != 0 {
		t.Errorf("RevokeAvatar(av_a) again = %d, %v; want 0, nil", n, err)
	}
	if n, err := m.RevokeAvatar(ctx, "av_nobody", "x"); err != nil || n != 0 {
		t.Errorf("RevokeAvatar(unknown avatar) = %d, %v; want 0, nil", n, err)
	}
	if _, err := m.RevokeAvatar(ctx, "", "x"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("RevokeAvatar(\"\") error = %v, want ErrInvalidArgument", err)
	}
}

// A session indexed but not yet stored when RevokeAvatar runs is a Create
// in flight: it must fail rather than outlive "sign out everywhere".
func TestRevokeAvatarPreemptsCreateInFlight(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now})
	ctx := context.Background()

	_, _, pending := newToken()
	if err := m.addToIndex(ctx, "av_a", pending, clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("addToIndex: %v", err)
	}
	if n, err := m.RevokeAvatar(ctx, "av_a", "sign out everywhere"); err != nil || n != 0 {
		t.Fatalf("RevokeAvatar = %d, %v; want 0 (nothing live yet), nil", n, err)
	}
	value, _ := record{Hash: make([]byte, 32), Avatar: "av_a", Expires: clock.Now().Add(time.Hour)}.marshal()
	if _, err := m.sessions.Create(ctx, pending, value); !errors.Is(err, store.ErrConflict) {
		t.Errorf("storing the in-flight session after RevokeAvatar: error = %v, want ErrConflict", err)
	}
	if got, err := m.Get(ctx, pending); err != nil || !got.Revoked {
		t.Errorf("Get(pre-empted) = %+v, %v; want a revoked placeholder", got, err)
	}
	if list, err := m.List(ctx, "av_a"); err != nil || len(list) != 0 {
		t.Errorf("List = %+v, %v; want no sessions (a placeholder is not one)", list, err)
	}

	// An index entry past its lifetime gets no placeholder.
	_, _, stale := newToken()
	if err := m.addToIndex(ctx, "av_b", stale, clock.Now().Add(time.Minute)); err != nil {
		t.Fatalf("addToIndex: %v", err)
	}
	clock.Advance(time.Minute)
	if _, err := m.RevokeAvatar(ctx, "av_b", "x"); err != nil {
		t.Fatalf("RevokeAvatar: %v", err)
	}
	if _, err := m.Get(ctx, stale); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("Get(expired index entry) error = %v, want ErrInvalidSession", err)
	}
}

func TestList(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now, IdleTimeout: 10 * time.Minute, Lifetime: time.Hour})
	ctx := context.Background()

	_, idle := mustCreate(t, m, "av_a")
	clock.Advance(11 * time.Minute)
	var want []string
	for range 3 {
		clock.Advance(time.Second)
		_, s := mustCreate(t, m, "av_a")
		want = append([]string{s.ID}, want...) // newest first
	}
	if err := m.Revoke(ctx, want[1], "signed out"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	mustCreate(t, m, "av_b")

	list, err := m.List(ctx, "av_a")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
		if s.ID == idle.ID {
			t.Errorf("List includes the idle session %s", idle.ID)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("List(av_a) = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("List(av_a) = %q, want %q", got, want)
		}
	}
	if !list[1].Revoked || list[0].Revoked {
		t.Errorf("List revoked flags = %v %v %v, want false true false", list[0].Revoked, list[1].Revoked, list[2].Revoked)
	}

	clock.Advance(time.Hour)
	if list, err := m.List(ctx, "av_a"); err != nil || len(list) != 0 {
		t.Errorf("List after the lifetime = %d sessions, %v; want 0", len(list), err)
	}
	if list, err := m.List(ctx, "av_nobody"); err != nil || list == nil || len(list) != 0 {
		t.Errorf("List(unknown avatar) = %#v, %v; want an empty list", list, err)
	}
}

func TestRevocationsReplayAndLive(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now, Lifetime: time.Hour, IdleTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Revoked, then past its lifetime when the watch starts: not replayed.
	_, old := mustCreate(t, m, "av_a")
	if err := m.Revoke(ctx, old.ID, "old"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	clock.Advance(30 * time.Minute)
	_, live := mustCreate(t, m, "av_a")
	token, touched := mustCreate(t, m, "av_b")
	clock.Advance(30 * time.Minute)
	// Revoked and still within its lifetime: replayed.
	_, before := mustCreate(t, m, "av_a")
	if err := m.Revoke(ctx, before.ID, "before"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}

	ch, err := m.Revocations(ctx)
	if err != nil {
		t.Fatalf("Revocations: %v", err)
	}
	if r := receive(t, ch); r.SessionID != before.ID || r.Reason != "before" || r.Avatar != "av_a" {
		t.Errorf("first revocation = %+v, want the replay of %s (\"before\")", r, before.ID)
	}

	clock.Advance(2 * time.Minute)
	if _, err := m.Authenticate(ctx, token); err != nil { // a touch: not a revocation
		t.Fatalf("Authenticate: %v", err)
	}
	if err := m.Revoke(ctx, live.ID, "live"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if r := receive(t, ch); r.SessionID != live.ID || r.Reason != "live" || !r.At.Equal(clock.Now()) {
		t.Errorf("next revocation = %+v, want %s (\"live\") at %v", r, live.ID, clock.Now())
	}
	if n, err := m.RevokeAvatar(ctx, "av_b", "everywhere"); err != nil || n != 1 {
		t.Fatalf("RevokeAvatar = %d, %v; want 1", n, err)
	}
	if r := receive(t, ch); r.SessionID != touched.ID || r.Reason != "everywhere" || r.Avatar != "av_b" {
		t.Errorf("next revocation = %+v, want %s (\"everywhere\")", r, touched.ID)
	}

	cancel()
	select {
	case r, ok := <-ch:
		if ok {
			t.Errorf("revocation after cancel: %+v, want the channel closed", r)
		}
	case <-time.After(10 * time.Second):
		t.Error("Revocations channel still open 10s after its context ended")
	}
}

// Two realm nodes on different servers of a cluster: a revocation on one
// reaches the other's watcher, and the other's Authenticate refuses it.
func TestRevocationsAcrossCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	servers := natstest.RunCluster(t, 3)
	a := newManagerOn(t, natstest.Connect(t, servers[0].ClientURL()), Config{})
	b := newManagerOn(t, natstest.Connect(t, servers[1].ClientURL()), Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ch, err := b.Revocations(ctx)
	if err != nil {
		t.Fatalf("Revocations: %v", err)
	}
	token, s := mustCreate(t, a, "av_a")
	if _, err := b.Authenticate(ctx, token); err != nil {
		t.Fatalf("Authenticate on the other node: %v", err)
	}
	if err := a.Revoke(ctx, s.ID, "cloned credential detected"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if r := receive(t, ch); r.SessionID != s.ID || r.Avatar != "av_a" || r.Reason != "cloned credential detected" {
		t.Errorf("revocation on the other node = %+v, want %s of av_a (\"cloned credential detected\")", r, s.ID)
	}
	if _, err := b.Authenticate(ctx, token); !errors.Is(err, ErrRevoked) {
		t.Errorf("Authenticate on the other node after the revocation: error = %v, want ErrRevoked", err)
	}

	var tokens []string
	pending := map[string]bool{}
	for range 3 {
		token, s := mustCreate(t, b, "av_c")
		tokens = append(tokens, token)
		pending[s.ID] = true
	}
	if n, err := a.RevokeAvatar(ctx, "av_c", "sign out everywhere"); err != nil || n != 3 {
		t.Fatalf("RevokeAvatar across nodes = %d, %v; want 3, nil", n, err)
	}
	for range 3 {
		r := receive(t, ch)
		if !pending[r.SessionID] || r.Avatar != "av_c" || r.Reason != "sign out everywhere" {
			t.Errorf("revocation after RevokeAvatar(av_c) = %+v, want one of %v", r, pending)
		}
		delete(pending, r.SessionID)
	}
	for i, token := range tokens {
		if _, err := b.Authenticate(ctx, token); !errors.Is(err, ErrRevoked) {
			t.Errorf("Authenticate(av_c session %d) error = %v, want ErrRevoked", i, err)
		}
	}
}
