package clustertest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// checkUnavailable fails unless a is a 503 with Retry-After and the
// unavailable problem type, and names no internal stream or bucket.
func checkUnavailable(t *testing.T, what string, a realmtest.RawAnswer) {
	t.Helper()
	if a.Status != http.StatusServiceUnavailable || a.Problem.Type != edge.ProblemBase+edge.TypeUnavailable {
		t.Fatalf("%s = %d %+v, want 503 of type %s", what, a.Status, a.Problem, edge.ProblemBase+edge.TypeUnavailable)
	}
	if secs, err := strconv.Atoi(a.RetryAfter); err != nil || secs < 1 {
		t.Fatalf("%s: Retry-After %q, want whole seconds", what, a.RetryAfter)
	}
	if strings.Contains(a.Problem.Detail, "ZR_") || strings.Contains(a.Problem.Detail, "KV_") || strings.Contains(a.Problem.Detail, "zr.") {
		t.Fatalf("%s: detail %q names an internal stream, bucket or subject", what, a.Problem.Detail)
	}
}

// TestStoreOutageAnswers503NotSignInAgain switches the embedded server's
// JetStream off under a running realm: a signed-in avatar's requests, whose
// session can no longer be read, answer 503 with Retry-After and the
// unavailable type (never 401, which would send the person to sign in
// again), and so does a ceremony that must store its state. A session
// that really ended keeps answering 401 while the store is healthy, and a
// token that cannot be a session answers 401 even during the outage.
//
// JetStream switched off this way does not refuse its API, it leaves
// requests unanswered, so each store call ends at the store's own timeout.
// The realm runs without a request deadline here, which would otherwise
// end the request first and answer request-timeout instead (see
// TestRequestDeadlineCutsAHungStore).
func TestStoreOutageAnswers503NotSignInAgain(t *testing.T) {
	// Most of its time is spent waiting for a store that does not answer,
	// and it shares nothing with the other tests: it runs beside them.
	t.Parallel()
	r := nodes.Start(t, realm.Config{Listen: "localhost:0", RequestTimeout: -1})
	c := nodes.Client(t, r)
	auth := webauthntest.New()
	live := c.Register(auth, "uma")
	ended := c.Login(auth, "uma")
	c.With(ended.Token).Must("POST", "/v1/sessions/logout", nil, nil)

	if a := realmtest.RawCall(t, r, "GET", "/v1/avatars/me", ended.Token, ""); a.Status != http.StatusUnauthorized || a.Problem.Type != edge.ProblemBase+edge.TypeSessionEnded {
		t.Fatalf("GET /v1/avatars/me with a signed-out session = %d %+v, want 401 %s", a.Status, a.Problem, edge.TypeSessionEnded)
	}
	if a := realmtest.RawCall(t, r, "GET", "/v1/avatars/me", live.Token, ""); a.Status != http.StatusOK {
		t.Fatalf("GET /v1/avatars/me before the outage = %d %+v", a.Status, a.Problem)
	}

	if err := realmtest.Probe(r).Embedded.Server().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	// The session cache answers for at most a second; then the session is
	// read from the store, which fails.
	var me realmtest.RawAnswer
	realmtest.Eventually(t, "GET /v1/avatars/me fails once the session cache expires", func() bool {
		me = realmtest.RawCall(t, r, "GET", "/v1/avatars/me", live.Token, "")
		return me.Status != http.StatusOK
	})
	checkUnavailable(t, "GET /v1/avatars/me during the outage", me)
	checkUnavailable(t, "GET /v1/sessions during the outage", realmtest.RawCall(t, r, "GET", "/v1/sessions", live.Token, ""))
	checkUnavailable(t, "POST /v1/webauthn/login/begin during the outage",
		realmtest.RawCall(t, r, "POST", "/v1/webauthn/login/begin", "", `{"name":"uma"}`))

	if a := realmtest.RawCall(t, r, "GET", "/v1/avatars/me", "not-a-session-token", ""); a.Status != http.StatusUnauthorized || a.Problem.Type != edge.ProblemBase+edge.TypeUnauthenticated {
		t.Fatalf("GET /v1/avatars/me with a malformed token during the outage = %d %+v, want 401 %s", a.Status, a.Problem, edge.TypeUnauthenticated)
	}
}

// TestQuorumLossAnswers503 runs a realm on a 3-node cluster and stops two
// of the servers: with no quorum, no stream has a leader. Requests that
// need the store answer 503 with Retry-After, as unavailable or, when the
// store call hangs until the request's deadline, request-timeout, both
// saying the read changed nothing; never 401 or 500. /readyz turns 503
// and /livez stays 200.
func TestQuorumLossAnswers503(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	// Most of its time is spent waiting for a store that does not answer,
	// and it shares nothing with the other tests: it runs beside them.
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	urls := strings.Split(natstest.ClusterURLs(servers), ",")
	r := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-q"})
	c := nodes.Client(t, r)
	auth := webauthntest.New()
	sess := c.Register(auth, "quinn")
	// A sign-in whose passkey assertion is made now and sent during the
	// outage.
	finish := c.BeginLogin(auth, "quinn")
	if code := realmtest.Get(t, r.URL()+"/readyz", nil); code != http.StatusOK {
		t.Fatalf("GET /readyz with quorum = %d", code)
	}

	for _, srv := range servers[1:] {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	// A write needs a leader at once.
	var w realmtest.RawAnswer
	realmtest.EventuallyWithin(t, "POST /v1/webauthn/register/begin fails without quorum", time.Minute, func() bool {
		w = withinDeadline(t, "POST /v1/webauthn/register/begin", func() realmtest.RawAnswer {
			return realmtest.RawCall(t, r, "POST", "/v1/webauthn/register/begin", "", `{"name":"quade","display_name":"Quade"}`)
		})
		return w.Status != http.StatusOK
	})
	if w.Status != http.StatusServiceUnavailable || w.RetryAfter == "" || w.Problem.Effect != "unknown" ||
		(w.Problem.Type != edge.ProblemBase+edge.TypeUnavailable && w.Problem.Type != edge.ProblemBase+edge.TypeRequestTimeout) {
		t.Fatalf("POST /v1/webauthn/register/begin without quorum = %d %+v (Retry-After %q), want 503 unavailable or request-timeout, effect unknown", w.Status, w.Problem, w.RetryAfter)
	}
	// A surviving replica may answer direct gets for a while after it lost
	// its leader; the session's reads fail once it stops.
	var a realmtest.RawAnswer
	realmtest.EventuallyWithin(t, "GET /v1/sessions fails without quorum", time.Minute, func() bool {
		a = withinDeadline(t, "GET /v1/sessions", func() realmtest.RawAnswer { return realmtest.RawCall(t, r, "GET", "/v1/sessions", sess.Token, "") })
		return a.Status != http.StatusOK
	})
	if a.Status != http.StatusServiceUnavailable || a.RetryAfter == "" || a.Problem.Effect != "none" ||
		(a.Problem.Type != edge.ProblemBase+edge.TypeUnavailable && a.Problem.Type != edge.ProblemBase+edge.TypeRequestTimeout) {
		t.Fatalf("GET /v1/sessions without quorum = %d %+v (Retry-After %q), want 503 unavailable or request-timeout, effect none", a.Status, a.Problem, a.RetryAfter)
	}
	body, _ := json.Marshal(finish)
	if in := withinDeadline(t, "POST /v1/webauthn/login/finish", func() realmtest.RawAnswer {
		return realmtest.RawCall(t, r, "POST", "/v1/webauthn/login/finish", "", string(body))
	}); in.Status != http.StatusServiceUnavailable || in.RetryAfter == "" {
		t.Fatalf("a sign-in without quorum = %d %+v (Retry-After %q), want 503", in.Status, in.Problem, in.RetryAfter)
	}
	realmtest.EventuallyWithin(t, "/readyz turns 503 without quorum", time.Minute, func() bool {
		return realmtest.Get(t, r.URL()+"/readyz", nil) == http.StatusServiceUnavailable
	})
	if code := realmtest.Get(t, r.URL()+"/livez", nil); code != http.StatusOK {
		t.Fatalf("GET /livez without quorum = %d, want 200", code)
	}
}

// withinDeadline runs call and fails the test if its answer came later
// than the request deadline (the default, which the realm in these tests
// runs with) plus a second: what the realm promises, whatever the store
// does (docs/errors.md).
func withinDeadline(t *testing.T, what string, call func() realmtest.RawAnswer) realmtest.RawAnswer {
	t.Helper()
	start := time.Now()
	a := call()
	if waited := time.Since(start); waited > edge.DefaultRequestTimeout+time.Second {
		t.Fatalf("%s answered %d after %v, past the request deadline %v and a second", what, a.Status, waited, edge.DefaultRequestTimeout)
	}
	return a
}
