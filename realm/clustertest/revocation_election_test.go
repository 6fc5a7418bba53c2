package clustertest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// signOutAnswer is POST /v1/sessions/logout's answer.
type signOutAnswer struct {
	Revoked   int  `json:"revoked"`
	NodesTold int  `json:"nodes_told"`
	NodesLive int  `json:"nodes_live"`
	Stored    bool `json:"stored"`
}

// TestSignOutWhileSessionsHaveNoLeader: two realm nodes on a 3-node NATS
// cluster, both connected to the same NATS server. The other two servers
// stop, so the sessions bucket has no leader (nor quorum to elect one).
// Signing out through node a still answers 200, says both nodes were told
// and the store does not have it yet; node b refuses the session (401,
// revoked) and closes its WebSocket before the bucket has a leader again.
// So do ending another avatar's session by its ID (DELETE
// /v1/sessions/{id}, 204) and signing it out everywhere, which needs no
// list of its sessions. When the servers return, the revocations are
// stored, and a sign-in made after "sign out everywhere" works.
func TestSignOutWhileSessionsHaveNoLeader(t *testing.T) {
	servers, a, b := twoNodesOnOneServer(t)
	ca := nodes.Client(t, a)
	sess := ca.Register(webauthntest.New(), "grace")
	auth := webauthntest.New()
	first := ca.Register(auth, "hana")
	second := ca.Login(auth, "hana")
	third := ca.Login(auth, "hana")
	for _, s := range []realmtest.Session{sess, first, second, third} {
		ca.With(s.Token).Must("GET", "/v1/avatars/me", nil, nil)
		nodes.Client(t, b).With(s.Token).Must("GET", "/v1/avatars/me", nil, nil)
	}
	ca = ca.With(sess.Token)
	cb := nodes.Client(t, b).With(sess.Token)
	ws := dialLive(t, b, sess.Token)
	defer ws.Close()
	wsEverywhere := dialLive(t, b, first.Token)
	defer wsEverywhere.Close()
	heardEachOther(t, a, b)

	restart1 := natstest.StopClusterNode(t, servers, 1)
	restart2 := natstest.StopClusterNode(t, servers, 2)
	// Node b cannot read the session any more: its cached copy aged out
	// and the bucket has no leader to read from.
	waitUntil(t, "node b to answer 503 for want of the sessions bucket", func() bool {
		status, _ := cb.Call("GET", "/v1/avatars/me", nil, nil)
		return status == http.StatusServiceUnavailable
	})

	poll := startRefusalPoll(t, b.URL()+"/v1/avatars/me", sess.Token)
	start := time.Now()
	var out signOutAnswer
	status, p := ca.Call("POST", "/v1/sessions/logout", nil, &out)
	answered := time.Since(start)
	if status != http.StatusOK {
		t.Fatalf("sign-out without a sessions leader = %d %+v; want 200", status, p)
	}
	if out != (signOutAnswer{Revoked: 1, NodesTold: 2, NodesLive: 2, Stored: false}) {
		t.Fatalf("sign-out answered %+v; want both nodes told, not stored yet", out)
	}
	firstSent, firstAnswered := poll.wait(t)
	t.Logf("sign-out answered in %v; node b refused a request sent %v after the sign-out began, answered %v after", answered, firstSent.Sub(start), firstAnswered.Sub(start))
	closedWithoutLeader(t, ws, "signed out", b, sess.Session.ID)

	// One session, by its ID, from another of the avatar's sessions.
	poll = startRefusalPoll(t, b.URL()+"/v1/avatars/me", third.Token)
	if status, p := ca.With(second.Token).Call("DELETE", "/v1/sessions/"+third.Session.ID, nil, nil); status != http.StatusNoContent {
		t.Fatalf("DELETE /v1/sessions/{id} without a sessions leader = %d %+v; want 204", status, p)
	}
	poll.wait(t)

	// Every session of the avatar, from the second.
	poll = startRefusalPoll(t, b.URL()+"/v1/avatars/me", first.Token)
	out = signOutAnswer{}
	if status, p := ca.With(second.Token).Call("POST", "/v1/sessions/logout-all", nil, &out); status != http.StatusOK {
		t.Fatalf("sign out everywhere without a sessions leader = %d %+v; want 200", status, p)
	}
	if out.NodesTold != 2 || out.NodesLive != 2 || out.Stored {
		t.Fatalf("sign out everywhere answered %+v; want both nodes told, not stored yet", out)
	}
	poll.wait(t)
	closedWithoutLeader(t, wsEverywhere, "signed out everywhere", b, first.Session.ID)

	restart1()
	restart2()
	waitStoredRevoked(t, b, sess.Session.ID, "signed out")
	if status, _ := cb.Call("GET", "/v1/avatars/me", nil, nil); status != http.StatusUnauthorized {
		t.Fatalf("revoked session on node b after recovery = %d, want 401", status)
	}
	waitStoredRevoked(t, b, third.Session.ID, "revoked by its avatar")
	for _, s := range []realmtest.Session{first, second} {
		waitStoredRevoked(t, b, s.Session.ID, "signed out everywhere")
	}
	// The cluster may still be settling: sign in once node a can write.
	waitUntil(t, "node a to be ready again", func() bool { return realmtest.Get(t, a.URL()+"/readyz", nil) == http.StatusOK })
	again := signInWhileSettling(t, a, auth, "hana")
	waitUntil(t, "the sign-in after the sign-out everywhere to work on node b", func() bool {
		status, _ := nodes.Client(t, b).With(again.Token).Call("GET", "/v1/avatars/me", nil, nil)
		return status == http.StatusOK
	})
}

// signInWhileSettling signs in as name on node r while the cluster may
// still be settling. A call the store cannot take yet is answered 503,
// and a client tries again: the begin, and after a finish answered 503
// (whose consume may or may not have been stored) a new ceremony. A
// ceremony whose begin was answered is never unknown at its finish (a
// leader's "subject busy" answer to the consume could be taken for "used
// already", see store.TestBucketWriteRightAfterItsAckIsNotAConflict).
func signInWhileSettling(t *testing.T, r *realm.Realm, auth *webauthntest.Authenticator, name string) realmtest.Session {
	t.Helper()
	c := nodes.Client(t, r)
	var s realmtest.Session
	waitUntil(t, "a sign-in on node a once the cluster has settled", func() bool {
		var begin realmtest.Begin
		status, p := c.Call("POST", "/v1/webauthn/login/begin", map[string]string{"name": name}, &begin)
		if status == http.StatusServiceUnavailable {
			return false
		}
		if status != http.StatusOK {
			t.Fatalf("sign-in begin while the cluster settles = %d %+v; want 200, or 503 while the store cannot take it", status, p)
		}
		opts, _ := json.Marshal(begin)
		cred, err := auth.Assert(opts, c.Origin)
		if err != nil {
			t.Fatal(err)
		}
		status, p = c.Call("POST", "/v1/webauthn/login/finish", map[string]any{"ceremony_id": begin.Ceremony(), "credential": json.RawMessage(cred)}, &s)
		if status == http.StatusServiceUnavailable {
			t.Logf("sign-in finish answered 503 while the cluster settles (%s); beginning again", p.Detail)
			return false
		}
		if status != http.StatusOK {
			t.Fatalf("finish of a ceremony begun on a ready node = %d %+v; want 200", status, p)
		}
		return true
	})
	return s
}

// twoNodesOnOneServer starts a 3-node NATS cluster and realm nodes a and
// b, both on its first server, which stays up while the tests stop the
// other two: the connections between the nodes (core NATS) never break;
// only JetStream loses its quorum. It skips in -short.
func twoNodesOnOneServer(t *testing.T) (servers []*server.Server, a, b *realm.Realm) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and stops two of its servers")
	}
	// Most of its time is spent waiting for a store that does not answer,
	// and it shares nothing with the other tests: it runs beside them.
	t.Parallel()
	servers = natstest.RunCluster(t, 3)
	only := []string{servers[0].ClientURL()}
	// A short shutdown: the nodes stop while the cluster is still
	// settling after its servers returned, and need not wait for it.
	a = nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: only, Node: "realm-a", ShutdownTimeout: time.Second})
	b = nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: only, Node: "realm-b", Origins: realmtest.Probe(a).Origins(), ShutdownTimeout: time.Second})
	return servers, a, b
}

// heardEachOther waits until each of the two nodes counts the other live.
func heardEachOther(t *testing.T, a, b *realm.Realm) {
	t.Helper()
	waitUntil(t, "each node to hear the other's presence heartbeat", func() bool {
		return len(realmtest.Probe(a).LivePeers()) == 1 && len(realmtest.Probe(b).LivePeers()) == 1
	})
}

// closedWithoutLeader fails unless ws, on node b, closed for its
// session's revocation naming reason, all of it before the sessions
// bucket has a leader again (b cannot read session id).
func closedWithoutLeader(t *testing.T, ws *websocket.Conn, reason string, b *realm.Realm, id string) {
	t.Helper()
	if code, got := realmtest.WaitClosed(t, ws); code != edge.CloseSessionEnded || !strings.Contains(got, reason) {
		t.Fatalf("socket on node b closed with %d %q, want %d naming %q", code, got, edge.CloseSessionEnded, reason)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := realmtest.Probe(b).Sessions.Get(ctx, id); err == nil {
		t.Fatal("the sessions bucket answered before its servers returned; the test proved nothing")
	}
}

// waitStoredRevoked waits until node r reads session id revoked with
// reason from the store.
func waitStoredRevoked(t *testing.T, r *realm.Realm, id, reason string) {
	t.Helper()
	// The background retries store it once the restarted servers have
	// elected the bucket's leader, which a loaded machine can take long
	// for: the wait is generous, as it asserts the outcome, not its pace.
	realmtest.EventuallyWithin(t, "the revocation to be stored once the bucket has a leader", 2*time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := realmtest.Probe(r).Sessions.Get(ctx, id)
		return err == nil && s.Revoked && s.RevokedReason == reason
	})
}

// refusalPoll sends a request every pollEvery, each abandoned after
// pollTimeout (a request that reaches the store waits for it), and notes
// the first one answered 401.
type refusalPoll struct {
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	// sent and answered are when the first refused request was sent and
	// answered.
	sent, answered time.Time
	wg             sync.WaitGroup
}

const (
	pollEvery   = 2 * time.Millisecond
	pollTimeout = 200 * time.Millisecond
)

func startRefusalPoll(t *testing.T, url, token string) *refusalPoll {
	p := &refusalPoll{done: make(chan struct{})}
	hc := &http.Client{Timeout: pollTimeout}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); p.wg.Wait() })
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-p.done:
				return
			case <-tick.C:
			}
			p.wg.Add(1)
			go func(sent time.Time) {
				defer p.wg.Done()
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := hc.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					p.mu.Lock()
					if p.sent.IsZero() || sent.Before(p.sent) {
						p.sent = sent
					}
					if p.answered.IsZero() {
						p.answered = time.Now()
					}
					p.mu.Unlock()
					p.once.Do(func() { close(p.done) })
				}
			}(time.Now())
		}
	}()
	return p
}

// wait returns when the first refused request was sent and answered.
func (p *refusalPoll) wait(t *testing.T) (sent, answered time.Time) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("node b never refused the signed-out session")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent, p.answered
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
