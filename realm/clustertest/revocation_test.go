package clustertest

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestRevocationClosesSocketOnAnotherNode signs in through node a, holds a
// WebSocket on node b, signs out through node a and checks that node b
// closes the socket with the revocation's reason.
func TestRevocationClosesSocketOnAnotherNode(t *testing.T) {
	a, b := nodes.TwoOnCluster(t)
	c := nodes.Client(t, a)
	auth := webauthntest.New()
	sess := c.Register(auth, "frank")
	ws := dialLive(t, b, sess.Token)
	defer ws.Close()

	// The session works on b too, as any node can authenticate it.
	cb := nodes.Client(t, b).With(sess.Token)
	cb.Must("GET", "/v1/avatars/me", nil, nil)

	c.With(sess.Token).Must("POST", "/v1/sessions/logout", nil, nil)
	code, reason := realmtest.WaitClosed(t, ws)
	if code != edge.CloseSessionEnded || !strings.Contains(reason, "signed out") {
		t.Fatalf("socket on node b closed with %d %q, want %d naming the sign-out", code, reason, edge.CloseSessionEnded)
	}
	if status, _ := cb.Call("GET", "/v1/avatars/me", nil, nil); status != 401 {
		t.Fatalf("revoked session on node b = %d, want 401", status)
	}
}

// BenchmarkRevocationPropagation measures how long a sign-out through one
// node takes to close the session's WebSocket on another node of a 3-node
// NATS cluster on loopback. Each iteration is one sign-in, one socket, one
// sign-out; it reports p50 and p99.
func BenchmarkRevocationPropagation(b *testing.B) {
	ta, tb := nodes.TwoOnCluster(b)
	auth := webauthntest.New()
	var delays []time.Duration
	client := &realmtest.Client{T: b, Base: ta.URL(), Origin: ta.URL(), HTTP: &http.Client{Timeout: 10 * time.Second}}
	client.Register(auth, "bench")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		sess := client.Login(auth, "bench")
		ws := dialLive(b, tb, sess.Token)
		b.StartTimer()
		start := time.Now()
		client.With(sess.Token).Must("POST", "/v1/sessions/logout", nil, nil)
		if code, _ := realmtest.WaitClosed(b, ws); code != edge.CloseSessionEnded {
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
