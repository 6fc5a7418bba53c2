package realm

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
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
	// ceremonyTTL is how long a begun passkey ceremony may be finished.
	ceremonyTTL = 2 * time.Minute
)

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
		if ok, wait := r.ceremonyRate.Take(edge.RateKey(r.edge.ClientAddr(req))); !ok {
			return edge.TooMany(wait, "too many passkey ceremonies from your address; wait and try again")
		}
	}
	if begin && r.pending != nil {
		if ok, wait := r.pending.admit(); !ok {
			return edge.TooMany(wait, "too many passkey ceremonies are in progress on this realm node; try again shortly")
		}
	}
	return nil
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
	ctx, cancel := edge.DetachForCleanup(req)
	defer cancel()
	for _, s := range oldestFirst(live, keep)[:over] {
		reason := "session limit: the avatar signed in again with " + strconv.Itoa(r.cfg.MaxSessionsPerAvatar) + " sessions open; the oldest ends"
		if err := r.sessions.Revoke(ctx, s.id, reason); err != nil {
			r.log.Warn("revoke a session over the avatar's limit", "avatar", avatarID, "session", s.id, "err", err)
			continue
		}
		r.auditAllow(req, avatarID, "RevokeSession", sessionResource(s.id), reason, nil)
	}
}

type sessionAge struct {
	id      string
	created time.Time
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
