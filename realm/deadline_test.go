package realm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestRequestDeadlineCutsAHungStore makes JetStream hang rather than
// refuse: its API is switched off and a subscriber that never answers
// takes its subjects, so every store call waits. With a request deadline
// far shorter than the store's own timeout, a read and a write both
// answer 503 request-timeout, the read saying it changed nothing and the
// write that its effect is unknown. Only the request's deadline assigns
// that type, so the answer shows the deadline cut the wait.
func TestRequestDeadlineCutsAHungStore(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", RequestTimeout: 500 * time.Millisecond})
	c := newClient(t, r)
	sess := c.Register(webauthntest.New(), "hana")

	if err := r.embedded.Server().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"$JS.API.>", r.cfg.Prefix + ".>"} {
		sub, err := r.nc.Subscribe(subject, func(*nats.Msg) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	var me realmtest.RawAnswer
	eventually(t, "GET /v1/avatars/me fails once the session cache expires", func() bool {
		me = realmtest.RawCall(t, r, "GET", "/v1/avatars/me", sess.Token, "")
		return me.Status != http.StatusOK
	})
	checkCutOff(t, "GET /v1/avatars/me", me, "none")
	checkCutOff(t, "POST /v1/webauthn/register/begin",
		realmtest.RawCall(t, r, "POST", "/v1/webauthn/register/begin", "", `{"name":"ines","display_name":"Ines"}`), "unknown")
}

func checkCutOff(t *testing.T, what string, a realmtest.RawAnswer, effect string) {
	t.Helper()
	if a.Status != http.StatusServiceUnavailable || a.Problem.Type != edge.ProblemBase+edge.TypeRequestTimeout || a.RetryAfter == "" {
		t.Fatalf("%s with a hung store = %d %+v (Retry-After %q), want 503 %s with Retry-After", what, a.Status, a.Problem, a.RetryAfter, edge.TypeRequestTimeout)
	}
	if a.Problem.Effect != effect {
		t.Fatalf("%s: effect %q, want %q", what, a.Problem.Effect, effect)
	}
}

// TestProblemEffect checks what writeError says about a request's effect:
// nothing for a read, unknown for a write, nothing for a write the
// handler knows it did not make; and a deadline that passed turns any
// server-side failure into request-timeout, but not a client error.
func TestProblemEffect(t *testing.T) {
	r, err := New(Config{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	unavailable := fmt.Errorf("session: read: %w", store.ErrUnavailable)
	cases := []struct {
		name, method string
		ctx          context.Context
		err          error
		status       int
		kind, effect string
	}{
		{"read, store unavailable", "GET", context.Background(), unavailable, 503, edge.TypeUnavailable, "none"},
		{"write, store unavailable", "POST", context.Background(), unavailable, 503, edge.TypeUnavailable, "unknown"},
		{"write known not made", "POST", context.Background(), &edge.Error{Status: 503, Detail: "nothing moved", Err: unavailable, NothingChanged: true}, 503, edge.TypeUnavailable, "none"},
		{"write past its deadline", "POST", expired, fmt.Errorf("audit: %w", context.DeadlineExceeded), 503, edge.TypeRequestTimeout, "unknown"},
		{"read past its deadline", "GET", expired, unavailable, 503, edge.TypeRequestTimeout, "none"},
		{"client error past the deadline", "GET", expired, &edge.Error{Status: 404, Detail: "no such thing"}, 404, edge.TypeNotFound, ""},
		{"starting", "POST", context.Background(), edge.ErrNotReady, 503, edge.TypeNotReady, ""},
		{"internal names in a detail", "GET", context.Background(), &edge.Error{Status: 404, Detail: "store: get k in KV_ZR_sessions: not found"}, 404, edge.TypeNotFound, ""},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, "/v1/x", nil).WithContext(tc.ctx)
		r.edge.WriteError(rec, req, tc.err)
		var p edge.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rec.Code != tc.status || p.Type != edge.ProblemBase+tc.kind || p.Effect != tc.effect {
			t.Errorf("%s: %d type %s effect %q, want %d %s %q", tc.name, rec.Code, p.Type, p.Effect, tc.status, tc.kind, tc.effect)
		}
		if strings.Contains(p.Detail, "ZR_") {
			t.Errorf("%s: detail %q names an internal bucket", tc.name, p.Detail)
		}
		if tc.status == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tc.name)
		}
	}
}
