package session

import (
	"sync"
	"time"
)

// ReasonRolledBack is the reason a session is refused when its stored
// record reads live although this node saw it revoked: someone put an
// older record back.
const ReasonRolledBack = "revoked earlier; an older record was put back"

// revokedSet is the node's deny list: until they would have expired, the
// sessions this node saw revoked. Stored entries are those it saw in the
// store (its own revocations and those its Revocations feed delivered):
// the store's records are authenticated, but an older genuine record can
// be put back, and a node that saw the revocation refuses it regardless.
// Denied entries are revocations it heard of before the store had them
// (Manager.Deny): they refuse the session without reading the store, so a
// revocation takes effect while the store cannot be read or written. An
// entry is never removed before its session's Expires, which the sealed
// record carries and never extends: past it the session is refused for
// its lifetime anyway. Nothing un-denies a session: entries only move from
// denied to stored and their expiry only grows. Lock order: revokedSet.mu
// only.
type revokedSet struct {
	mu  sync.Mutex
	ids map[string]revokedEntry
	// sweepAt is the size at which expired entries are dropped next.
	sweepAt int
}

type revokedEntry struct {
	at, expires time.Time
	// stored: the store holds the revocation as this node saw it.
	// Until then the entry alone refuses the session, with its avatar
	// and reason.
	stored         bool
	avatar, reason string
}

// minSweep is the smallest size worth sweeping at.
const minSweep = 1024

// add records a revocation the store holds.
func (s *revokedSet) add(id string, at, expires time.Time) {
	s.put(id, revokedEntry{at: at, expires: expires, stored: true})
}

// put merges e into id's entry: stored wins over denied, the later expiry
// and the earlier revocation time win, and a denied entry keeps the first
// reason heard.
func (s *revokedSet) put(id string, e revokedEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]revokedEntry{}
		s.sweepAt = minSweep
	}
	if old, ok := s.ids[id]; ok {
		e.stored = e.stored || old.stored
		if old.expires.After(e.expires) {
			e.expires = old.expires
		}
		if !old.at.IsZero() && (e.at.IsZero() || old.at.Before(e.at)) {
			e.at = old.at
		}
		if old.reason != "" {
			e.avatar, e.reason = old.avatar, old.reason
		}
	}
	s.ids[id] = e
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

// denied returns id's entry if it refuses the session without the store:
// heard of (Manager.Deny) and not yet seen stored, and not expired at now.
func (s *revokedSet) denied(id string, now time.Time) (revokedEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ids[id]
	if !ok || e.stored || !now.Before(e.expires) {
		return revokedEntry{}, false
	}
	return e, true
}
