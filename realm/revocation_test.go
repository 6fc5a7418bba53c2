package realm

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// dialLive opens the realm WebSocket with a bearer token and reads the
// hello.
func dialLive(t testing.TB, r *Realm, token string) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(r.URL(), "http") + "/v1/realm"
	ws, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	var hello liveMessage
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.Trust["state"] == nil {
		t.Fatalf("first message = %+v, %v; want a hello with trust", hello, err)
	}
	return ws
}

// waitClosed reads until the server closes the socket and returns the close
// code and reason.
func waitClosed(t testing.TB, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code, ce.Text
			}
			t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

func twoNodes(t testing.TB) (*Realm, *Realm) {
	servers := natstest.RunCluster(t, 3)
	urls := strings.Split(natstest.ClusterURLs(servers), ",")
	// Both nodes serve the same origin, as behind one load balancer.
	a := startRealm(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-a"})
	b := startRealm(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", Origins: a.origins()})
	return a, b
}

// TestRevocationClosesSocketOnAnotherNode signs in through node a, holds a
// WebSocket on node b, signs out through node a and checks that node b
// closes the socket with the revocation's reason.
func TestRevocationClosesSocketOnAnotherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	a, b := twoNodes(t)
	c := newClient(t, a)
	auth := webauthntest.New()
	sess := c.register(auth, "frank")
	ws := dialLive(t, b, sess.Token)
	defer ws.Close()

	// The session works on b too, as any node can authenticate it.
	cb := newClient(t, b).with(sess.Token)
	cb.must("GET", "/v1/avatars/me", nil, nil)

	c.with(sess.Token).must("POST", "/v1/sessions/logout", nil, nil)
	code, reason := waitClosed(t, ws)
	if code != edge.CloseSessionEnded || !strings.Contains(reason, "signed out") {
		t.Fatalf("socket on node b closed with %d %q, want %d naming the sign-out", code, reason, edge.CloseSessionEnded)
	}
	if status, _ := cb.call("GET", "/v1/avatars/me", nil, nil); status != 401 {
		t.Fatalf("revoked session on node b = %d, want 401", status)
	}
}

// BenchmarkRevocationPropagation measures how long a sign-out through one
// node takes to close the session's WebSocket on another node of a 3-node
// NATS cluster on loopback. Each iteration is one sign-in, one socket, one
// sign-out; it reports p50 and p99.
func BenchmarkRevocationPropagation(b *testing.B) {
	ta, tb := twoNodes(b)
	auth := webauthntest.New()
	var delays []time.Duration
	client := &apiClient{t: b, base: ta.URL(), origin: ta.URL(), hc: &http.Client{Timeout: 10 * time.Second}}
	client.register(auth, "bench")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		sess := client.login(auth, "bench")
		ws := dialLive(b, tb, sess.Token)
		b.StartTimer()
		start := time.Now()
		client.with(sess.Token).must("POST", "/v1/sessions/logout", nil, nil)
		if code, _ := waitClosed(b, ws); code != edge.CloseSessionEnded {
			b.Fatalf("close code %d, want %d", code, edge.CloseSessionEnded)
		}
		delays = append(delays, time.Since(start))
		ws.Close()
	}
	b.StopTimer()
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	pct := func(p float64) float64 {
		return float64(delays[int(p*float64(len(delays)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
