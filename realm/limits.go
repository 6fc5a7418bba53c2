package realm

import (
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
)

// Limits on what an unauthenticated client, or one avatar, can make the
// realm hold: passkey ceremonies (each a stored record until it is
// finished or expires), sessions, and live connections. Every refusal is
// 429 with Retry-After, as an RFC 9457 problem.

// Defaults of the limits; see Config.
const (
	defaultCeremonyRate         = 5
	defaultCeremonyBurst        = 50
	defaultMaxPendingCeremonies = 10_000
	defaultMaxSessionsPerAvatar = 32
	defaultMaxLivePerAvatar     = 8
	// maxRateKeys bounds the client addresses the ceremony limiter
	// remembers: beyond it, addresses whose bucket has refilled are
	// forgotten, and if none has, the one seen longest ago.
	maxRateKeys = 100_000
	// ceremonyTTL is how long a begun passkey ceremony may be finished.
	ceremonyTTL = 2 * time.Minute
	// liveRetryAfter is what a client refused a live connection is told
	// to wait: a connection of the avatar has to end first.
	liveRetryAfter = 30 * time.Second
)

// tooMany is a refusal by a limit.
func tooMany(retryAfter time.Duration, detail string) *httpError {
	return &httpError{Status: http.StatusTooManyRequests, Detail: detail, RetryAfter: retryAfter}
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up, at
// least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// rateLimiter is a token bucket per key (a client address): rate tokens a
// second, at most burst saved up. Its clock is injected, so tests need not
// wait.
type rateLimiter struct {
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

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*tokenBucket{}}
}

// take spends a token of key, or reports how long until one is there.
func (l *rateLimiter) take(key string) (ok bool, wait time.Duration) {
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
func (l *rateLimiter) forget(now time.Time) {
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

// pendingCeremonies counts the ceremonies this node has begun that are
// neither finished here nor expired, up to a cap. The count is per node: a
// cluster-wide one would be a counter every begin on every node updates
// with compare-and-set, one hot key that serializes sign-ins across the
// cluster and that an attacker could keep contended. A node's cap bounds
// the ceremony records it can make the store hold, so the cluster's bound
// is the cap times the nodes. A ceremony finished on another node stays
// counted here until it expires: the cap errs towards refusing.
type pendingCeremonies struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	open  map[string]time.Time // ceremony id -> when it expires
	order []string             // ids in the order begun, so also of expiry
}

func newPendingCeremonies(max int, ttl time.Duration, now func() time.Time) *pendingCeremonies {
	return &pendingCeremonies{max: max, ttl: ttl, now: now, open: map[string]time.Time{}}
}

// admit reports whether one more ceremony may begin, or how long until
// the oldest pending one expires.
func (p *pendingCeremonies) admit() (ok bool, wait time.Duration) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if len(p.open) < p.max {
		return true, 0
	}
	return false, p.open[p.order[0]].Sub(now)
}

// begun counts the ceremony id until it expires or is finished.
func (p *pendingCeremonies) begun(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open[id] = p.now().Add(p.ttl)
	p.order = append(p.order, id)
}

// finished stops counting id: its record is gone.
func (p *pendingCeremonies) finished(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.open, id)
}

// expire drops the expired ids, and the finished ones, from the front.
func (p *pendingCeremonies) expire(now time.Time) {
	i := 0
	for ; i < len(p.order); i++ {
		exp, ok := p.open[p.order[i]]
		if ok && now.Before(exp) {
			break
		}
		delete(p.open, p.order[i])
	}
	p.order = p.order[i:]
}

// admitCeremony applies the ceremony rate limit of the request's client
// address; a begin also needs room among the pending ceremonies.
func (r *Realm) admitCeremony(req *http.Request, begin bool) error {
	if r.ceremonyRate != nil {
		if ok, wait := r.ceremonyRate.take(rateKey(r.clientAddr(req))); !ok {
			return tooMany(wait, "too many passkey ceremonies from your address; wait and try again")
		}
	}
	if begin && r.pending != nil {
		if ok, wait := r.pending.admit(); !ok {
			return tooMany(wait, "too many passkey ceremonies are in progress on this realm node; try again shortly")
		}
	}
	return nil
}

// rateKey is what one client is limited as: its IPv4 address, or the /64
// of its IPv6 address, since one subscriber commonly holds a whole /64.
func rateKey(addr netip.Addr) string {
	if addr.Is4() || addr.Is4In6() {
		return addr.Unmap().String()
	}
	if p, err := addr.Prefix(64); err == nil {
		return p.String()
	}
	return addr.String()
}

// clientAddr is the address of the client that sent req: the connection's
// peer, or, when the peer is a configured trusted proxy, the address the
// proxies recorded in X-Forwarded-For (see forwardedClient).
func (r *Realm) clientAddr(req *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return forwardedClient(peer.Addr().Unmap(), req.Header.Values("X-Forwarded-For"), r.cfg.TrustedProxies)
}

// clientAddress is clientAddr as the trust signals record it.
func (r *Realm) clientAddress(req *http.Request) string {
	if a := r.clientAddr(req); a.IsValid() {
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

// limitSessions revokes the avatar's oldest live sessions beyond
// MaxSessionsPerAvatar, keeping keep (the one just issued). A new sign-in
// always succeeds for whoever holds a passkey; the sessions an avatar
// holds, each a bearer credential, stay bounded.
func (r *Realm) limitSessions(req *http.Request, avatarID, keep string, live []sessionAge) {
	over := len(live) - r.cfg.MaxSessionsPerAvatar
	if over <= 0 {
		return
	}
	ctx, cancel := sessionContext(req)
	defer cancel()
	for _, s := range oldestFirst(live, keep)[:over] {
		reason := "session limit: the avatar signed in again with " + strconv.Itoa(r.cfg.MaxSessionsPerAvatar) + " sessions open; the oldest ends"
		if _, err := r.revokeOne(ctx, session.Session{ID: s.id, Avatar: avatarID, Expires: s.expires}, reason); err != nil {
			r.log.Warn("revoke a session over the avatar's limit", "avatar", avatarID, "session", s.id, "err", err)
			continue
		}
		r.auditAllow(req, avatarID, "RevokeSession", sessionResource(s.id), reason, nil)
	}
}

type sessionAge struct {
	id               string
	created, expires time.Time
}

// oldestFirst is live without keep, the oldest first.
func oldestFirst(live []sessionAge, keep string) []sessionAge {
	out := make([]sessionAge, 0, len(live))
	for _, s := range live {
		if s.id != keep {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sessionAge) int { return a.created.Compare(b.created) })
	return out
}
