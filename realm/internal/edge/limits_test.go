package edge

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestCeremonyRateIsATokenBucketPerClient(t *testing.T) {
	clock := &testClock{t: time.Unix(1_700_000_000, 0)}
	l := NewRateLimiter(1, 3, clock.now)
	for i := range 3 {
		if ok, _ := l.Take("a"); !ok {
			t.Fatalf("call %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := l.Take("a")
	if ok || wait != time.Second {
		t.Fatalf("call beyond the burst = %v, wait %v; want refused, wait 1s", ok, wait)
	}
	if ok, _ := l.Take("b"); !ok {
		t.Fatal("another client was refused for a's calls")
	}
	clock.advance(time.Second)
	if ok, _ := l.Take("a"); !ok {
		t.Fatal("a was refused after a second refilled a token")
	}
	if ok, _ := l.Take("a"); ok {
		t.Fatal("a refilled more than one token in a second")
	}
	clock.advance(time.Hour)
	for i := range 3 {
		if ok, _ := l.Take("a"); !ok {
			t.Fatalf("after an hour, call %d refused: the bucket holds at most the burst, and should be full", i+1)
		}
	}
	if ok, _ := l.Take("a"); ok {
		t.Fatal("the bucket saved more than the burst")
	}

	// One IPv6 subscriber's /64 is one client; IPv4 addresses are each
	// their own, mapped or not.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:1")
	if RateKey(v6a) != RateKey(v6b) || RateKey(v6a) == RateKey(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Fatalf("IPv6 keys %s %s: want one key per /64", RateKey(v6a), RateKey(v6b))
	}
	if RateKey(netip.MustParseAddr("::ffff:192.0.2.1")) != RateKey(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("an IPv4-mapped address is limited apart from its IPv4 address")
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
	l := NewRateLimiter(5, 50, time.Now)
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	headers := make([][]string, 10_000)
	for i := range headers {
		headers[i] = []string{netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}).String()}
	}
	peer := netip.MustParseAddr("10.0.0.2")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		l.Take(RateKey(forwardedClient(peer, headers[i%len(headers)], proxies)))
	}
}
