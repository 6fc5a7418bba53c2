package realm

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestCeremonyRateIsATokenBucketPerClient(t *testing.T) {
	clock := &testClock{t: time.Unix(1_700_000_000, 0)}
	l := newRateLimiter(1, 3, clock.now)
	for i := range 3 {
		if ok, _ := l.take("a"); !ok {
			t.Fatalf("call %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := l.take("a")
	if ok || wait != time.Second {
		t.Fatalf("call beyond the burst = %v, wait %v; want refused, wait 1s", ok, wait)
	}
	if ok, _ := l.take("b"); !ok {
		t.Fatal("another client was refused for a's calls")
	}
	clock.advance(time.Second)
	if ok, _ := l.take("a"); !ok {
		t.Fatal("a was refused after a second refilled a token")
	}
	if ok, _ := l.take("a"); ok {
		t.Fatal("a refilled more than one token in a second")
	}
	clock.advance(time.Hour)
	for i := range 3 {
		if ok, _ := l.take("a"); !ok {
			t.Fatalf("after an hour, call %d refused: the bucket holds at most the burst, and should be full", i+1)
		}
	}
	if ok, _ := l.take("a"); ok {
		t.Fatal("the bucket saved more than the burst")
	}

	// One IPv6 subscriber's /64 is one client; IPv4 addresses are each
	// their own, mapped or not.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:1")
	if rateKey(v6a) != rateKey(v6b) || rateKey(v6a) == rateKey(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Fatalf("IPv6 keys %s %s: want one key per /64", rateKey(v6a), rateKey(v6b))
	}
	if rateKey(netip.MustParseAddr("::ffff:192.0.2.1")) != rateKey(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("an IPv4-mapped address is limited apart from its IPv4 address")
	}
}

func TestPendingCeremoniesAreCapped(t *testing.T) {
	clock := &testClock{t: time.Unix(1_700_000_000, 0)}
	p := newPendingCeremonies(2, 2*time.Minute, clock.now)
	p.begun("a")
	clock.advance(time.Minute)
	p.begun("b")
	ok, wait := p.admit()
	if ok || wait != time.Minute {
		t.Fatalf("admit at the cap = %v, wait %v; want refused until a expires in 1m", ok, wait)
	}
	p.finished("b")
	if ok, _ := p.admit(); !ok {
		t.Fatal("a finished ceremony still counts")
	}
	p.begun("c")
	if ok, _ := p.admit(); ok {
		t.Fatal("admitted beyond the cap")
	}
	clock.advance(time.Minute)
	if ok, _ := p.admit(); !ok {
		t.Fatal("an expired ceremony still counts")
	}
}

func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	addr := netip.MustParseAddr
	cases := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"direct client", "198.51.100.7", nil, "198.51.100.7"},
		{"untrusted peer's header is ignored", "198.51.100.7", []string{"203.0.113.9"}, "198.51.100.7"},
		{"through one proxy", "10.0.0.2", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed entries left of the client are ignored", "10.0.0.2", []string{"192.0.2.66, 203.0.113.9"}, "203.0.113.9"},
		{"through two proxies", "10.0.0.2", []string{"203.0.113.9", "10.1.1.1"}, "203.0.113.9"},
		{"only proxies", "10.0.0.2", []string{"10.1.1.1"}, "10.1.1.1"},
		{"proxy without header", "10.0.0.2", nil, "10.0.0.2"},
		{"malformed entry stops at the last trusted hop", "10.0.0.2", []string{"203.0.113.9, garbage"}, "10.0.0.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := forwardedClient(addr(tc.peer), tc.xff, proxies); got != addr(tc.want) {
				t.Fatalf("client = %s, want %s", got, tc.want)
			}
		})
	}
}

// limitedCall sends a ceremony begin as the client at xff (through the
// test's trusted loopback proxy) and returns the status, the problem and
// Retry-After.
func limitedCall(t *testing.T, c *apiClient, path, xff string) (int, problem, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p problem
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
	first := c.register(auth, "ivy")
	second := c.login(auth, "ivy")
	third := c.login(auth, "ivy")
	if code, p := c.with(first.Token).call("GET", "/v1/avatars/me", nil, nil); code != 401 || !strings.Contains(p.Detail, "session limit") {
		t.Fatalf("the oldest session after a sign-in beyond the cap = %d %+v, want 401 revoked by the session limit", code, p)
	}
	for _, s := range []sessionAnswer{second, third} {
		c.with(s.Token).must("GET", "/v1/avatars/me", nil, nil)
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

// FuzzForwardedClient feeds the X-Forwarded-For walk arbitrary headers: it
// must never panic, must answer the peer itself when the peer is not a
// trusted proxy, and otherwise an address that is the peer or one the
// header names.
func FuzzForwardedClient(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "192.0.2.66, 203.0.113.9", "10.1.1.1", "garbage", "", " , ,", "2001:db8::1, 10.0.0.3", "::ffff:10.0.0.1", "fe80::1%eth0"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	f.Fuzz(func(t *testing.T, header string, viaProxy bool) {
		peer := netip.MustParseAddr("198.51.100.7")
		if viaProxy {
			peer = netip.MustParseAddr("10.0.0.2")
		}
		got := forwardedClient(peer, []string{header}, proxies)
		if !viaProxy && got != peer {
			t.Fatalf("an untrusted peer's header %q gave %s, want the peer", header, got)
		}
		if got == peer {
			return
		}
		for _, h := range strings.Split(header, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(h)); err == nil && a.Unmap() == got {
				return
			}
		}
		t.Fatalf("header %q gave %s, neither the peer nor an address it names", header, got)
	})
}

// BenchmarkCeremonyRateLimiter measures one ceremony call's admission: the
// client address from X-Forwarded-For of a trusted proxy, its key and a
// token from its bucket, over 10,000 client addresses.
func BenchmarkCeremonyRateLimiter(b *testing.B) {
	l := newRateLimiter(5, 50, time.Now)
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	headers := make([][]string, 10_000)
	for i := range headers {
		headers[i] = []string{netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}).String()}
	}
	peer := netip.MustParseAddr("10.0.0.2")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		l.take(rateKey(forwardedClient(peer, headers[i%len(headers)], proxies)))
	}
}
