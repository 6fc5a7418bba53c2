package identity

import (
	"net/http"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Limits bound what an unauthenticated client, or one avatar, can make a
// node hold: passkey ceremonies (each a stored record until it is finished
// or expires) and sessions. A refusal is 429 with Retry-After. Zero turns
// a limit off.
type Limits struct {
	// CeremonyRate and CeremonyBurst are the token bucket of ceremony
	// calls per client address.
	CeremonyRate  float64
	CeremonyBurst int
	// MaxPendingCeremonies caps the ceremonies this node has begun and
	// not seen finished.
	MaxPendingCeremonies int
	// MaxSessionsPerAvatar is how many live sessions an avatar keeps: a
	// sign-in beyond it ends the oldest.
	MaxSessionsPerAvatar int
}

// CeremonyTTL is how long a begun passkey ceremony may be finished.
const CeremonyTTL = 2 * time.Minute

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
func (a *API) admitCeremony(req *http.Request, begin bool) error {
	if a.ceremonyRate != nil {
		if ok, wait := a.ceremonyRate.Take(edge.RateKey(a.edge.ClientAddr(req))); !ok {
			return edge.TooMany(wait, "too many passkey ceremonies from your address; wait and try again")
		}
	}
	if begin && a.pending != nil {
		if ok, wait := a.pending.admit(); !ok {
			return edge.TooMany(wait, "too many passkey ceremonies are in progress on this realm node; try again shortly")
		}
	}
	return nil
}
