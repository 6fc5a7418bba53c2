package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/testlog"
)

// testLogger writes the warnings of what a test runs into its output.
var testLogger = testlog.New

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestManager starts a single-node server and returns a Manager on it
// and the connection it uses.
func newTestManager(t testing.TB, cfg Config) (*Manager, *nats.Conn) {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	return newManagerOn(t, nc, cfg), nc
}

func newManagerOn(t testing.TB, nc *nats.Conn, cfg Config) *Manager {
	t.Helper()
	ctx := context.Background()
	st, err := store.New(ctx, nc, store.Config{Logger: testLogger(t), RecordKey: testRecordKey})
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	m, err := New(ctx, st, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func mustCreate(t testing.TB, m *Manager, avatarID string) (string, Session) {
	t.Helper()
	token, s, err := m.Create(context.Background(), avatarID, Meta{Credential: "Y3JlZC0x", Node: "n1", UserAgent: "test"})
	if err != nil {
		t.Fatalf("Create(%q): %v", avatarID, err)
	}
	return token, s
}

// revision is the store revision of a session's record: it moves on every
// write, so tests count writes with it.
func revision(t testing.TB, m *Manager, id string) uint64 {
	t.Helper()
	e, err := m.sessions.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("sessions.Get(%s): %v", id, err)
	}
	return e.Revision
}

// receive waits for the next revocation on ch.
func receive(t testing.TB, ch <-chan Revocation) Revocation {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("Revocations channel closed early")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no revocation delivered within 10s")
	}
	return Revocation{}
}

// testRecordKey authenticates the test stores' sealed records, as the
// realm's record key does.
var testRecordKey = []byte("zerorealm test record key 32 by!")
