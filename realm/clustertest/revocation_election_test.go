package clustertest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
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
// When the servers return, the background attempt stores the revocation.
func TestSignOutWhileSessionsHaveNoLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and stops two of its servers")
	}
	// Most of its time is spent waiting for a store that does not answer,
	// and it shares nothing with the other tests: it runs beside them.
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	// Both nodes on servers[0], which stays up: the connections between
	// the nodes (core NATS) never break; only JetStream loses its quorum.
	only := []string{servers[0].ClientURL()}
	// A short shutdown: the nodes stop while the cluster is still
	// settling after its servers returned, and need not wait for it.
	a := startRealm(t, realm.Config{Listen: "localhost:0", NATS: only, Node: "realm-a", ShutdownTimeout: time.Second})
	b := startRealm(t, realm.Config{Listen: "localhost:0", NATS: only, Node: "realm-b", Origins: realmtest.Probe(a).Origins(), ShutdownTimeout: time.Second})
	ca := newClient(t, a)
	sess := ca.Register(webauthntest.New(), "grace")
	ca = ca.With(sess.Token)
	cb := newClient(t, b).With(sess.Token)
	ca.Must("GET", "/v1/avatars/me", nil, nil)
	cb.Must("GET", "/v1/avatars/me", nil, nil)
	ws := dialLive(t, b, sess.Token)
	defer ws.Close()
	waitUntil(t, "each node to hear the other's presence heartbeat", func() bool {
		return len(realmtest.Probe(a).LivePeers()) == 1 && len(realmtest.Probe(b).LivePeers()) == 1
	})

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
	if code, reason := waitClosed(t, ws); code != edge.CloseSessionEnded || !strings.Contains(reason, "signed out") {
		t.Fatalf("socket on node b closed with %d %q, want %d naming the sign-out", code, reason, edge.CloseSessionEnded)
	}
	// All of it before the bucket has a leader again: nothing has been
	// restarted yet.
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := realmtest.Probe(b).Sessions.Get(ctx, sess.Session.ID); err == nil {
		t.Fatal("the sessions bucket answered before its servers returned; the test proved nothing")
	}

	restart1()
	restart2()
	waitUntil(t, "the revocation to be stored once the bucket has a leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := realmtest.Probe(b).Sessions.Get(ctx, sess.Session.ID)
		return err == nil && s.Revoked && s.RevokedReason == "signed out"
	})
	if status, _ := cb.Call("GET", "/v1/avatars/me", nil, nil); status != http.StatusUnauthorized {
		t.Fatalf("revoked session on node b after recovery = %d, want 401", status)
	}
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
