package sessiontrust

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// heard is what a hub told the rest of the realm: the decisions its audit
// log accepted and the hooks it called.
type heard struct {
	mu sync.Mutex
	told
}

type told struct {
	audited   []audit.Outcome
	changes   []trust.State
	suspended []string
	passkeys  []bool
}

func (h *heard) snapshot() told {
	h.mu.Lock()
	defer h.mu.Unlock()
	return told{
		audited: append([]audit.Outcome(nil), h.audited...), changes: append([]trust.State(nil), h.changes...),
		suspended: append([]string(nil), h.suspended...), passkeys: append([]bool(nil), h.passkeys...),
	}
}

func testStore(t *testing.T) *store.Store {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	st, err := store.New(context.Background(), nc, store.Config{RecordKey: bytes.Repeat([]byte{7}, store.RecordKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openHub opens a hub of node on st with a real audit log, and returns
// what it tells the realm.
func openHub(t *testing.T, st *store.Store, node string, clk clock.Clock) (*Hub, *heard) {
	t.Helper()
	h := &heard{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	al, err := audit.Open(context.Background(), st, audit.Config{Node: node, Logger: log, Observe: func(action string, o audit.Outcome) {
		if action == "AssessTrust" {
			h.mu.Lock()
			h.audited = append(h.audited, o)
			h.mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = al.Close(context.Background()) })
	hub, err := Open(context.Background(), Deps{
		Store: st, SessionLifetime: time.Hour, Audit: al, Log: log, Clock: clk,
		OnChange: func(_ string, a trust.Assessment) {
			h.mu.Lock()
			h.changes = append(h.changes, a.State)
			h.mu.Unlock()
		},
		OnSuspended: func(_ context.Context, avatarID string) {
			h.mu.Lock()
			h.suspended = append(h.suspended, avatarID)
			h.mu.Unlock()
		},
		OnPasskey: func(_ string, uv bool) {
			h.mu.Lock()
			h.passkeys = append(h.passkeys, uv)
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return hub, h
}

func verifiedPasskey() trust.PasskeyAssertion {
	return trust.PasskeyAssertion{At: time.Now(), UserVerified: true, Attested: true, Credential: "Y3JlZA"}
}

var testSession = session.Session{ID: "s1", Avatar: "a1"}

// TestEvidenceRebuildsOnAnotherNode: a node that has not seen a session
// rebuilds its trust from the evidence another node stored, a clone's
// suspension included.
func TestEvidenceRebuildsOnAnotherNode(t *testing.T) {
	st := testStore(t)
	ctx := context.Background()
	a, _ := openHub(t, st, "a", nil)
	first, err := a.ObservePasskey(ctx, testSession, verifiedPasskey())
	if err != nil {
		t.Fatal(err)
	}
	if first.State != trust.Trusted {
		t.Fatalf("after a user-verified passkey: %s, want %s", first.State, trust.Trusted)
	}
	b, _ := openHub(t, st, "b", nil)
	if got := b.Assess(ctx, testSession).State; got != trust.Trusted {
		t.Fatalf("another node rebuilt %s, want %s", got, trust.Trusted)
	}

	a.ObserveClone(ctx, testSession, "Y3JlZA")
	c, _ := openHub(t, st, "c", nil)
	if got := c.Assess(ctx, testSession).State; got != trust.Suspended {
		t.Fatalf("a third node rebuilt %s after the clone, want %s", got, trust.Suspended)
	}
	// A node that forgets the session rebuilds it too.
	b.Forget(testSession.ID)
	if got := b.Assess(ctx, testSession).State; got != trust.Suspended {
		t.Fatalf("a node that forgot the session rebuilt %s, want %s", got, trust.Suspended)
	}
}

// TestChangesAreAuditedAndAnnounced: every change of state is an
// AssessTrust record (deny unless trusted) and a push; a suspension
// stops the avatar's agents; every passkey is told to the XR edge.
func TestChangesAreAuditedAndAnnounced(t *testing.T) {
	st := testStore(t)
	ctx := context.Background()
	hub, h := openHub(t, st, "a", nil)
	if _, err := hub.ObservePasskey(ctx, testSession, verifiedPasskey()); err != nil {
		t.Fatal(err)
	}
	hub.Assess(ctx, testSession) // no change: nothing more is told
	hub.ObserveClone(ctx, testSession, "Y3JlZA")
	got := h.snapshot()
	if len(got.changes) != 2 || got.changes[0] != trust.Trusted || got.changes[1] != trust.Suspended {
		t.Fatalf("pushed %v, want [trusted suspended]", got.changes)
	}
	if len(got.audited) != 2 || got.audited[0] != audit.Allow || got.audited[1] != audit.Deny {
		t.Fatalf("audited %v, want [allow deny]", got.audited)
	}
	if len(got.suspended) != 1 || got.suspended[0] != testSession.Avatar {
		t.Fatalf("told of suspended avatars %v, want [%s]", got.suspended, testSession.Avatar)
	}
	if len(got.passkeys) != 1 || !got.passkeys[0] {
		t.Fatalf("told of passkeys %v, want [true]", got.passkeys)
	}
}

// TestAddressChangeAsksStepUp: a request from another address than the
// sign-in's costs the session its trusted state; the same address, or a
// session whose address is unknown, changes nothing.
func TestAddressChangeAsksStepUp(t *testing.T) {
	st := testStore(t)
	ctx := context.Background()
	hub, h := openHub(t, st, "a", nil)
	unknown := session.Session{ID: "s2", Avatar: "a1"}
	if _, err := hub.ObservePasskey(ctx, unknown, verifiedPasskey()); err != nil {
		t.Fatal(err)
	}
	hub.ObserveAddress(ctx, unknown, "203.0.113.9")
	if got := hub.Assess(ctx, unknown).State; got != trust.Trusted {
		t.Fatalf("a session without a sign-in address: %s, want %s", got, trust.Trusted)
	}

	if _, err := hub.ObservePasskey(ctx, testSession, verifiedPasskey()); err != nil {
		t.Fatal(err)
	}
	hub.ObserveSignIn(ctx, testSession, "198.51.100.7", 1)
	hub.ObserveAddress(ctx, testSession, "198.51.100.7")
	if got := hub.Assess(ctx, testSession).State; got != trust.Trusted {
		t.Fatalf("from the sign-in's address: %s, want %s", got, trust.Trusted)
	}
	hub.ObserveAddress(ctx, testSession, "203.0.113.9")
	if got := hub.Assess(ctx, testSession).State; got == trust.Trusted {
		t.Fatal("a request from another address left the session trusted")
	}
	if got := h.snapshot().changes; got[len(got)-1] == trust.Trusted {
		t.Fatalf("the change of address was not pushed: %v", got)
	}
}

// TestBadSignalChangesNothing: a signal the trust algorithm refuses is an
// error, and the session's state, record and audit stay as they were.
func TestBadSignalChangesNothing(t *testing.T) {
	st := testStore(t)
	ctx := context.Background()
	hub, h := openHub(t, st, "a", nil)
	if _, err := hub.ObservePasskey(ctx, testSession, verifiedPasskey()); err != nil {
		t.Fatal(err)
	}
	before := h.snapshot()
	if _, err := hub.Observe(ctx, testSession, trust.BiometricMatch{At: time.Now(), Probability: 2}); err == nil {
		t.Fatal("a match probability of 2 was accepted")
	}
	if _, err := hub.ObservePasskey(ctx, testSession, trust.PasskeyAssertion{UserVerified: true}); err == nil {
		t.Fatal("a passkey assertion without a time or credential was accepted")
	}
	if got := hub.Assess(ctx, testSession).State; got != trust.Trusted {
		t.Fatalf("after refused signals: %s, want %s", got, trust.Trusted)
	}
	if after := h.snapshot(); len(after.audited) != len(before.audited) || len(after.passkeys) != len(before.passkeys) {
		t.Fatalf("refused signals were audited or announced: %+v then %+v", before, after)
	}
}

// TestDecayBecomesAChange: the loop re-assesses the sessions it tracks,
// so a passkey grown old asks for a step-up without any request: the
// change is pushed, audited and stored for the other nodes.
func TestDecayBecomesAChange(t *testing.T) {
	st := testStore(t)
	clk := clock.NewManual(time.Now())
	hub, h := openHub(t, st, "a", clk)
	assertion := verifiedPasskey()
	assertion.At = clk.Now()
	if a, err := hub.ObservePasskey(context.Background(), testSession, assertion); err != nil || a.State != trust.Trusted {
		t.Fatalf("after a user-verified passkey: %+v, %v", a, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The loop ticks on the hub's clock: once its ticker is armed, moving
	// the clock a day is a tick.
	if err := clk.WaitArmed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	deadline := time.Now().Add(time.Minute)
	for {
		got := h.snapshot()
		if n := len(got.changes); n > 0 && got.changes[n-1] != trust.Trusted {
			if got.audited[len(got.audited)-1] != audit.Deny {
				t.Fatalf("the decay was audited as %v, want deny", got.audited)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a day-old passkey left the session trusted: changes %v", got.changes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	other, _ := openHub(t, st, "b", clk)
	if got := other.Assess(context.Background(), testSession).State; got == trust.Trusted {
		t.Fatal("another node rebuilt the decayed session as trusted")
	}
}

// TestRunStopsWithItsContext: the decay loop ends when its context does
// (goleak checks that nothing is left behind).
func TestRunStopsWithItsContext(t *testing.T) {
	st := testStore(t)
	hub, _ := openHub(t, st, "a", nil)
	hub.Assess(context.Background(), testSession)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestOpenRefusesMissingDeps(t *testing.T) {
	if _, err := Open(context.Background(), Deps{}); err == nil {
		t.Fatal("Open without a store, auditor or logger succeeded")
	}
}
