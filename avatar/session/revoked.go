package session

import (
	"sync"
	"time"
)

// ReasonRolledBack is the reason a session is refused when its stored
// record reads live although this node saw it revoked: someone put an
// older record back.
const ReasonRolledBack = "revoked earlier; an older record was put back"

// revokedSet remembers, until they would have expired, the sessions this
// node saw revoked (its own revocations and those its Revocations feed
// delivered). The store's records are authenticated, but an older genuine
// record can be put back; a node that saw the revocation refuses it
// regardless. Lock order: revokedSet.mu only.
type revokedSet struct {
	mu  sync.Mutex
	ids map[string]revokedEntry
	// sweepAt is the size at which expired entries are dropped next.
	sweepAt int
}

type revokedEntry struct{ at, expires time.Time }

// minSweep is the smallest size worth sweeping at.
const minSweep = 1024

func (s *revokedSet) add(id string, at, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]revokedEntry{}
		s.sweepAt = minSweep
	}
	s.ids[id] = revokedEntry{at: at, expires: expires}
	if len(s.ids) >= s.sweepAt {
		// Drop what has expired; sweeping again only once the set has
		// doubled keeps adding amortised O(1).
		now := time.Now()
		for k, e := range s.ids {
			if !now.Before(e.expires) {
				delete(s.ids, k)
			}
		}
		s.sweepAt = max(minSweep, 2*len(s.ids))
	}
}

// has reports whether id was seen revoked and has not expired at now, and
// when it was revoked.
func (s *revokedSet) has(id string, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ids[id]
	if !ok || !now.Before(e.expires) {
		return time.Time{}, false
	}
	return e.at, true
}
