package realm

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// limitedCall sends a ceremony begin as the client at xff (through the
// test's trusted loopback proxy) and returns the status, the problem and
// Retry-After.
func limitedCall(t *testing.T, c *apiClient, path, xff string) (int, edge.Problem, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.Base+path, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p edge.Problem
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("POST %s = %d with %s, want problem+json", path, resp.StatusCode, ct)
		}
		_ = json.NewDecoder(resp.Body).Decode(&p)
	}
	return resp.StatusCode, p, resp.Header.Get("Retry-After")
}

// TestCeremoniesAreLimitedPerClientAndPerNode checks the ceremony rate per
// client address (taken from X-Forwarded-For of a trusted proxy) and the
// node's cap on pending ceremonies: both answer 429 with Retry-After.
func TestCeremoniesAreLimitedPerClientAndPerNode(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", CeremonyBurst: 2, CeremonyRate: 0.001, MaxPendingCeremonies: 3,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	c := newClient(t, r)
	for i := range 2 {
		if code, p, _ := limitedCall(t, c, "/v1/webauthn/login/begin", "203.0.113.1"); code != 200 {
			t.Fatalf("begin %d from client 1 = %d %+v, want 200", i+1, code, p)
		}
	}
	code, p, retry := limitedCall(t, c, "/v1/webauthn/login/begin", "203.0.113.1")
	if secs, err := strconv.Atoi(retry); code != 429 || err != nil || secs < 1 || !strings.Contains(p.Detail, "your address") {
		t.Fatalf("begin 3 from client 1 = %d %+v Retry-After %q, want 429 with Retry-After in seconds", code, p, retry)
	}
	if code, p, _ := limitedCall(t, c, "/v1/webauthn/login/finish", "203.0.113.1"); code != 429 {
		t.Fatalf("finish from client 1 over its rate = %d %+v, want 429", code, p)
	}
	// Another client behind the same proxy has its own bucket; its begin
	// fills the node's pending ceremonies.
	if code, p, _ := limitedCall(t, c, "/v1/webauthn/login/begin", "203.0.113.2"); code != 200 {
		t.Fatalf("begin from client 2 = %d %+v, want 200", code, p)
	}
	code, p, retry = limitedCall(t, c, "/v1/webauthn/login/begin", "203.0.113.3")
	if secs, err := strconv.Atoi(retry); code != 429 || err != nil || secs < 1 || !strings.Contains(p.Detail, "in progress") {
		t.Fatalf("begin beyond the pending cap = %d %+v Retry-After %q, want 429 with Retry-After", code, p, retry)
	}
}

// TestSessionsAndLiveConnectionsPerAvatarAreCapped checks that a sign-in
// beyond the avatar's session cap revokes its oldest session, and that a
// realm WebSocket beyond the avatar's cap on the node is refused with 429.
func TestSessionsAndLiveConnectionsPerAvatarAreCapped(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", MaxSessionsPerAvatar: 2, MaxLivePerAvatar: 1})
	c := newClient(t, r)
	auth := webauthntest.New()
	first := c.Register(auth, "ivy")
	second := c.Login(auth, "ivy")
	third := c.Login(auth, "ivy")
	if code, p := c.With(first.Token).Call("GET", "/v1/avatars/me", nil, nil); code != 401 || !strings.Contains(p.Detail, "session limit") {
		t.Fatalf("the oldest session after a sign-in beyond the cap = %d %+v, want 401 revoked by the session limit", code, p)
	}
	for _, s := range []sessionAnswer{second, third} {
		c.With(s.Token).Must("GET", "/v1/avatars/me", nil, nil)
	}

	ws := dialLive(t, r, second.Token)
	defer ws.Close()
	url := "ws" + strings.TrimPrefix(r.URL(), "http") + "/v1/realm"
	_, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + third.Token}})
	if err == nil || resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("a second live connection of the avatar = %v (status %d), want 429 with Retry-After", err, status)
	}
	// The same session connecting again replaces its connection: allowed.
	again := dialLive(t, r, second.Token)
	defer again.Close()
	if code, _ := waitClosed(t, ws); code != closeReplaced {
		t.Fatalf("the replaced connection closed with %d, want %d", code, closeReplaced)
	}
}
