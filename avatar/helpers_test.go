package avatar

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/testlog"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

const testOrigin = "http://localhost:8080"

// testLogger writes the warnings of what a test runs into its output.
var testLogger = testlog.New

// clock is a settable clock for expiry tests; it starts at the real time
// so that ceremony TTLs in the bucket still make sense.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond) // strictly increasing, as marks expect
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestStore(t testing.TB) *store.Store {
	t.Helper()
	srv := natstest.RunServer(t)
	st, err := store.New(context.Background(), natstest.ConnectInProcess(t, srv), store.Config{Logger: testLogger(t), RecordKey: testRecordKey})
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	return st
}

func newTestService(t testing.TB, cfg Config) *Service {
	t.Helper()
	st := newTestStore(t)
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(context.Background(), st, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func register(t testing.TB, s *Service, auth *webauthntest.Authenticator, name string) (*Avatar, *Credential) {
	t.Helper()
	ctx := context.Background()
	c, err := s.BeginRegistration(ctx, Registration{Name: name, DisplayName: "Test " + name}, "")
	if err != nil {
		t.Fatalf("BeginRegistration(%q): %v", name, err)
	}
	resp, err := auth.Register(c.Options, testOrigin)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	a, cred, err := s.FinishRegistration(ctx, c.ID, resp)
	if err != nil {
		t.Fatalf("FinishRegistration(%q): %v", name, err)
	}
	return a, cred
}

// beginLogin begins a sign-in and has auth answer it.
func beginLogin(t testing.TB, s *Service, auth *webauthntest.Authenticator, name string) (string, []byte) {
	t.Helper()
	c, err := s.BeginLogin(context.Background(), name)
	if err != nil {
		t.Fatalf("BeginLogin(%q): %v", name, err)
	}
	resp, err := auth.Assert(c.Options, testOrigin)
	if err != nil {
		t.Fatalf("Assert: %v", err)
	}
	return c.ID, resp
}

func login(t testing.TB, s *Service, auth *webauthntest.Authenticator, name string) Assertion {
	t.Helper()
	id, resp := beginLogin(t, s, auth, name)
	a, err := s.FinishLogin(context.Background(), id, resp)
	if err != nil {
		t.Fatalf("FinishLogin(%q): %v", name, err)
	}
	return a
}

// state is what refused requests must leave unchanged.
type state struct {
	avatars, names, credentials int
	records                     map[string]string
}

func snapshot(t testing.TB, s *Service) state {
	t.Helper()
	ctx := context.Background()
	st := state{records: map[string]string{}}
	keys, err := s.avatars.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	st.avatars = len(keys)
	for _, k := range keys {
		e, err := s.avatars.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%s): %v", k, err)
		}
		st.records[k] = string(e.Value)
	}
	for _, b := range []struct {
		n   *int
		bkt *store.Bucket
	}{{&st.names, s.names}, {&st.credentials, s.creds}} {
		keys, err := b.bkt.Keys(ctx)
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		*b.n = len(keys)
	}
	return st
}

func sameState(t testing.TB, what string, before, after state) {
	t.Helper()
	if before.avatars != after.avatars || before.names != after.names || before.credentials != after.credentials {
		t.Errorf("%s: avatars/names/credentials = %d/%d/%d, want %d/%d/%d", what,
			after.avatars, after.names, after.credentials, before.avatars, before.names, before.credentials)
	}
	for k, v := range before.records {
		if after.records[k] != v {
			t.Errorf("%s: record %s changed:\n%s\nwant\n%s", what, k, after.records[k], v)
		}
	}
}

// editOptions rewrites the publicKey member of ceremony options.
func editOptions(t testing.TB, options []byte, edit func(pk map[string]any)) []byte {
	t.Helper()
	var o map[string]map[string]any
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("options: %v", err)
	}
	edit(o["publicKey"])
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// editJSON rewrites a credential response.
func editJSON(t testing.TB, resp []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(resp, &m); err != nil {
		t.Fatalf("response: %v", err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testRecordKey authenticates the test stores' sealed records, as the
// realm's record key does.
var testRecordKey = []byte("zerorealm test record key 32 by!")
