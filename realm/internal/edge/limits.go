package edge

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxRateKeys bounds the client addresses a rate limiter remembers: beyond
// it, addresses whose bucket has refilled are forgotten, and if none has,
// the one seen longest ago.
const maxRateKeys = 100_000

// TooMany is a refusal by a limit.
func TooMany(retryAfter time.Duration, detail string) *Error {
	return &Error{Status: http.StatusTooManyRequests, Detail: detail, RetryAfter: retryAfter}
}

// RetryAfterSeconds is a Retry-After value: whole seconds, rounded up, at
// least 1.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// RateLimiter is a token bucket per key (a client address): rate tokens a
// second, at most burst saved up. Its clock is injected, so tests need not
// wait.
type RateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func NewRateLimiter(rate float64, burst int, now func() time.Time) *RateLimiter {
	return &RateLimiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*tokenBucket{}}
}

// Take spends a token of key, or reports how long until one is there.
func (l *RateLimiter) Take(key string) (ok bool, wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxRateKeys {
			l.forget(now)
		}
		b = &tokenBucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// forget drops the buckets that have refilled (they hold nothing a new
// bucket would not), or else the one used longest ago.
func (l *RateLimiter) forget(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if oldest == "" || b.last.Before(oldestAt) {
			oldest, oldestAt = k, b.last
		}
	}
	if len(l.buckets) >= maxRateKeys {
		delete(l.buckets, oldest)
	}
}

// RateKey is what one client is limited as: its IPv4 address, or the /64
// of its IPv6 address, since one subscriber commonly holds a whole /64.
func RateKey(addr netip.Addr) string {
	if addr.Is4() || addr.Is4In6() {
		return addr.Unmap().String()
	}
	if p, err := addr.Prefix(64); err == nil {
		return p.String()
	}
	return addr.String()
}

// ClientAddr is the address of the client that sent req: the connection's
// peer, or, when the peer is a configured trusted proxy, the address the
// proxies recorded in X-Forwarded-For (see forwardedClient).
func (e *Edge) ClientAddr(req *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return forwardedClient(peer.Addr().Unmap(), req.Header.Values("X-Forwarded-For"), e.cfg.TrustedProxies)
}

// ClientAddress is ClientAddr as the trust signals record it.
func (e *Edge) ClientAddress(req *http.Request) string {
	if a := e.ClientAddr(req); a.IsValid() {
		return a.String()
	}
	return req.RemoteAddr
}

// forwardedClient walks X-Forwarded-For from the nearest hop back while
// each hop is a trusted proxy, and returns the first address that is not:
// the client as the outermost trusted proxy saw it. Entries to its left
// were written by the client or by proxies nobody vouches for, so they are
// never believed. A malformed entry ends the walk at the last trusted hop.
func forwardedClient(peer netip.Addr, forwardedFor []string, trusted []netip.Prefix) netip.Addr {
	if !isTrustedProxy(peer, trusted) {
		return peer
	}
	var hops []string
	for _, h := range forwardedFor {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return client
		}
		client = a.Unmap()
		if !isTrustedProxy(client, trusted) {
			return client
		}
	}
	return client
}

func isTrustedProxy(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
