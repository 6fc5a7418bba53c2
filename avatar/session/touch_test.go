package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTouchKeepsASessionInUseAlive checks that Touch extends the idle time
// like an authentication does, and reports an idle, expired or revoked
// session as ended.
func TestTouchKeepsASessionInUseAlive(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now, IdleTimeout: 10 * time.Minute, Lifetime: time.Hour, TouchEvery: time.Minute})
	ctx := context.Background()
	token, s := mustCreate(t, m, "av_touch")

	// Used every 5 minutes through Touch alone for 20 minutes: twice the
	// idle timeout, and the token still authenticates.
	for range 4 {
		clock.Advance(5 * time.Minute)
		got, err := m.Touch(ctx, s.ID)
		if err != nil || !got.LastSeen.Equal(clock.Now()) {
			t.Fatalf("Touch = %+v, %v; want LastSeen %v", got, err, clock.Now())
		}
	}
	if _, err := m.Authenticate(ctx, token); err != nil {
		t.Fatalf("Authenticate after touches = %v, want the session alive", err)
	}

	clock.Advance(10 * time.Minute)
	var se *Error
	if _, err := m.Touch(ctx, s.ID); !errors.Is(err, ErrExpired) || !errors.As(err, &se) || se.Reason != ReasonIdle {
		t.Fatalf("Touch after the idle timeout = %v, want ErrExpired (%s)", err, ReasonIdle)
	}

	_, live := mustCreate(t, m, "av_touch")
	if err := m.Revoke(ctx, live.ID, "signed out"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Touch(ctx, live.ID); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Touch of a revoked session = %v, want ErrRevoked", err)
	}
	if _, err := m.Touch(ctx, "not-an-id"); !errors.Is(err, ErrInvalidSession) {
		t.Fatalf("Touch of a malformed ID = %v, want ErrInvalidSession", err)
	}
}
