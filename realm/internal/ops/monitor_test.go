package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

var testRecordKey = []byte("zerorealm test record key 32 by!")

type answer struct {
	Status string          `json:"status"`
	Reason string          `json:"reason"`
	Node   string          `json:"node"`
	Checks map[string]bool `json:"checks"`
	Scenes int             `json:"scenes"`
}

func get(t *testing.T, mux *http.ServeMux, path string) (int, answer, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var a answer
	body := rec.Body.String()
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("%s: %v in %s", path, err, body)
		}
	}
	return rec.Code, a, rec.Header(), body
}

func routes(m *Monitor) *http.ServeMux {
	mux := http.NewServeMux()
	m.Routes(mux)
	return mux
}

// TestStartingNodeIsAliveButNotReady: before the node has started, /livez
// answers 200 (a supervisor must not restart it), /readyz and /healthz
// answer 503 with the start-up state as the reason and Retry-After, and
// the ready gauge reads 0.
func TestStartingNodeIsAliveButNotReady(t *testing.T) {
	m := New("")
	m.SetNode("n1")
	m.NotReady("waiting for JetStream")
	mux := routes(m)
	if code, a, _, _ := get(t, mux, "/livez"); code != http.StatusOK || a.Status != "alive" || a.Node != "n1" {
		t.Fatalf("/livez = %d %+v, want 200 alive from n1", code, a)
	}
	for _, path := range []string{"/readyz", "/healthz"} {
		code, a, h, _ := get(t, mux, path)
		if code != http.StatusServiceUnavailable || a.Reason != "waiting for JetStream" || h.Get("Retry-After") != "1" {
			t.Fatalf("%s = %d %+v (Retry-After %q), want 503 with the start-up reason", path, code, a, h.Get("Retry-After"))
		}
	}
	if _, _, _, body := get(t, mux, "/metrics"); !strings.Contains(body, "\nzerorealm_ready 0\n") || !strings.Contains(body, "\nzerorealm_live 1\n") {
		t.Fatalf("metrics of a starting node lack zerorealm_ready 0 and zerorealm_live 1:\n%s", body)
	}
	if m.Started() {
		t.Fatal("a starting node reads started")
	}
}

// TestReadinessFollowsTheStore binds a store on a real JetStream server:
// once started the node is ready with every check passed; when the server
// goes away the background probe turns it not ready, naming the NATS
// connection and no stream.
func TestReadinessFollowsTheStore(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.New(ctx, nc, store.Config{Logger: log, RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	m := New("n1")
	m.Bind(ctx, Probes{Store: st, NATS: nc, Scenes: func() int { return 3 }, Log: log})
	m.Ready()
	mux := routes(m)
	code, a, _, _ := get(t, mux, "/readyz")
	if code != http.StatusOK || a.Status != "ready" || !a.Checks[CheckNATS] || !a.Checks[CheckJetStream] || !a.Checks[CheckLeaders] || !a.Checks[CheckDisk] {
		t.Fatalf("/readyz = %d %+v, want 200 with every check passed", code, a)
	}
	if code, a, _, _ := get(t, mux, "/healthz"); code != http.StatusOK || a.Status != "ok" || a.Scenes != 3 {
		t.Fatalf("/healthz = %d %+v, want 200 ok with 3 scenes", code, a)
	}
	if _, _, _, body := get(t, mux, "/metrics"); !strings.Contains(body, "\nzerorealm_nats_connected 1\n") || !strings.Contains(body, `zerorealm_ready_check{check="leaders"} 1`) {
		t.Fatalf("metrics of a ready node lack the connection and the checks:\n%s", body)
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); m.Run(runCtx) }()
	defer func() { cancel(); wg.Wait() }()
	srv.Shutdown()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, a, _, _ = get(t, mux, "/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %+v after the server stopped", code, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(a.Reason, "NATS connection") || a.Checks[CheckNATS] || strings.Contains(a.Reason, "KV_") {
		t.Fatalf("not ready for %q (checks %v), want the NATS connection named and no stream", a.Reason, a.Checks)
	}
}

// TestWriteGateHoldsOnlyOnceStarted: the start-up writes go ahead on a
// full disk; once the node serves, the refusal stands.
func TestWriteGateHoldsOnlyOnceStarted(t *testing.T) {
	full := errors.New("disk full")
	m := New("n1")
	gate := m.WriteGate(func() error { return full })
	if err := gate(); err != nil {
		t.Fatalf("gate while starting = %v, want nil", err)
	}
	m.Ready()
	if err := gate(); !errors.Is(err, full) {
		t.Fatalf("gate once started = %v, want the refusal", err)
	}
	m.NotReady("shutting down")
	if err := gate(); err != nil {
		t.Fatalf("gate while stopping = %v, want nil", err)
	}
}

// TestDecisionActionsAreBounded: the action label takes at most
// maxActionLabels values; decisions beyond count as "other".
func TestDecisionActionsAreBounded(t *testing.T) {
	m := New("n1")
	for i := range maxActionLabels + 5 {
		m.Decided("Action"+strings.Repeat("x", i), audit.Allow)
	}
	m.Decided("Action", audit.Deny)
	_, _, _, body := get(t, routes(m), "/metrics")
	if !strings.Contains(body, `zerorealm_decisions_total{action="other",outcome="allow"} 5`) || !strings.Contains(body, `zerorealm_decisions_total{action="Action",outcome="deny"} 1`) {
		t.Fatalf("decision metrics do not bound the action label:\n%s", body)
	}
}

// TestReadinessRidesOutAMomentsSlowness: a check a busy node can miss for
// a moment (JetStream answering late, a stream between leaders) turns the
// node not ready only after three probes in a row fail it, and a node
// that turned not ready is ready again only after two in a row pass;
// meanwhile /readyz keeps its verdict and says what the probes found. A
// NATS connection down or a full disk turns it at once.
func TestReadinessRidesOutAMomentsSlowness(t *testing.T) {
	passed := readiness{ready: true, checks: map[string]bool{CheckNATS: true, CheckJetStream: true, CheckLeaders: true, CheckDisk: true}, diskFree: -1}
	slow := readiness{reason: "JetStream does not answer", checks: map[string]bool{CheckNATS: true, CheckDisk: true}, diskFree: -1}
	down := readiness{reason: "NATS connection RECONNECTING", atOnce: true, checks: map[string]bool{CheckDisk: true}, diskFree: -1}
	m := New("n1")
	m.probes.Store(&Probes{Log: slog.New(slog.DiscardHandler)})
	m.last.Store(&passed)
	m.Ready()
	mux := routes(m)
	ctx := context.Background()

	type turning struct {
		Probes int    `json:"probes"`
		Of     int    `json:"of"`
		Found  string `json:"found"`
	}
	readyz := func() (int, answer, *turning) {
		t.Helper()
		code, a, _, body := get(t, mux, "/readyz")
		var extra struct {
			Turning *turning `json:"turning"`
		}
		if err := json.Unmarshal([]byte(body), &extra); err != nil {
			t.Fatal(err)
		}
		return code, a, extra.Turning
	}
	steps := []struct {
		found   readiness
		code    int
		turning *turning
	}{
		{slow, http.StatusOK, &turning{1, 3, slow.reason}},
		{passed, http.StatusOK, nil}, // one slow probe, forgotten
		{slow, http.StatusOK, &turning{1, 3, slow.reason}},
		{slow, http.StatusOK, &turning{2, 3, slow.reason}},
		{slow, http.StatusServiceUnavailable, nil}, // the third in a row
		{passed, http.StatusServiceUnavailable, &turning{1, 2, "passing again"}},
		{slow, http.StatusServiceUnavailable, nil},
		{passed, http.StatusServiceUnavailable, &turning{1, 2, "passing again"}},
		{passed, http.StatusOK, nil},               // the second in a row
		{down, http.StatusServiceUnavailable, nil}, // at once
	}
	for i, s := range steps {
		m.record(ctx, s.found)
		code, a, tr := readyz()
		if code != s.code || !reflect.DeepEqual(tr, s.turning) {
			t.Fatalf("step %d (probe found %q): /readyz %d %+v turning %+v; want %d turning %+v", i, s.found.reason, code, a, tr, s.code, s.turning)
		}
		if code == http.StatusServiceUnavailable && a.Reason == "" {
			t.Fatalf("step %d: not ready without a reason", i)
		}
		// The checks are the probe's, whatever the verdict.
		if a.Checks[CheckJetStream] != s.found.checks[CheckJetStream] {
			t.Fatalf("step %d: jetstream check %v, the probe found %v", i, a.Checks[CheckJetStream], s.found.checks[CheckJetStream])
		}
	}
	// Every failing probe is counted, whether it turned the node or not.
	for check, want := range map[string]float64{CheckJetStream: 6, CheckNATS: 1, CheckDisk: 0} {
		var got dto.Metric
		if err := m.probeFailures.WithLabelValues(check).Write(&got); err != nil {
			t.Fatal(err)
		}
		if got := got.GetCounter().GetValue(); got != want {
			t.Errorf("zerorealm_ready_probe_failures_total{check=%q} = %v, want %v", check, got, want)
		}
	}
}
