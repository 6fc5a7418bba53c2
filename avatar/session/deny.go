package session

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
)

// maxDeniedAhead bounds how far past now a denial may claim its session
// lives: no session outlives Lifetime, so a later Expires is refused as
// malformed rather than kept in the deny list for longer.
const maxDeniedAhead = ttlMargin

// Deny makes this node refuse the session rev names from now on, without
// waiting for the store: Authenticate, AuthenticateCached and Touch
// answer ErrRevoked with rev's reason at once, and every Revocations feed
// of this Manager delivers rev, so live connections close. It is how a
// revocation takes effect on every node while the sessions bucket cannot
// be written (it is electing a leader, say); the store's record follows
// (see Revoke) and, once a feed sees it, the record decides again, so a
// revoked record put back later is still caught.
//
// The denial lasts until rev.Expires, the session's own end, and cannot be
// withdrawn: calling Deny again only merges (stored wins, the later expiry
// wins). Callers must only pass revocations they authenticated. Deny
// refuses, changing nothing, a malformed session ID, a zero or past
// Expires, or an Expires beyond Lifetime from now.
func (m *Manager) Deny(rev Revocation) error {
	if !validID(rev.SessionID) {
		return fmt.Errorf("%w: malformed session ID", ErrInvalidArgument)
	}
	now := m.now()
	switch {
	case !now.Before(rev.Expires):
		return fmt.Errorf("%w: session %s expired at %v: nothing to deny", ErrInvalidArgument, rev.SessionID, rev.Expires)
	case rev.Expires.After(now.Add(m.lifetime + maxDeniedAhead)):
		return fmt.Errorf("%w: session %s expires %v, beyond the session lifetime", ErrInvalidArgument, rev.SessionID, rev.Expires)
	}
	if rev.At.IsZero() {
		rev.At = now
	}
	rev.Avatar = truncate(rev.Avatar, maxAvatarLen)
	rev.Reason = cleanReason(rev.Reason)
	m.revoked.put(rev.SessionID, revokedEntry{at: rev.At, expires: rev.Expires, avatar: rev.Avatar, reason: rev.Reason})
	m.cache.evict(rev.SessionID)
	m.denials.deliver(rev)
	return nil
}

// deniedErr is the refusal of a session denied and not yet seen stored,
// or nil.
func (m *Manager) deniedErr(id string) error {
	e, ok := m.revoked.denied(id, m.now())
	if !ok {
		return nil
	}
	return &Error{Kind: ErrRevoked, SessionID: id, Avatar: e.avatar, Reason: e.reason, At: e.at}
}

// Recall returns the session of token as this node last read it, without
// the store, if this node authenticated it and it has neither expired nor
// been revoked as far as this node knows. It authenticates only to end a
// session: the token's full hash must match the remembered record, so the
// token is proven, but the record may be stale (idle time, revocations by
// nodes this node has not heard from). The realm uses it to let a client
// sign out while the store cannot be read.
func (m *Manager) Recall(token string) (Session, bool) {
	hash, id, ok := parseToken(token)
	if !ok {
		return Session{}, false
	}
	rec, ok := m.cache.recall(id)
	if !ok || subtle.ConstantTimeCompare(rec.Hash, hash[:]) != 1 {
		return Session{}, false
	}
	return m.Remembered(id)
}

// Remembered returns session id as this node last read it, without the
// store, if it has neither expired nor been revoked as far as this node
// knows. It authenticates nothing (an ID is public): the realm uses it
// only to let an avatar end one of its own sessions, whose avatar the
// record names, while the store cannot be read.
func (m *Manager) Remembered(id string) (Session, bool) {
	rec, ok := m.cache.recall(id)
	if !ok {
		return Session{}, false
	}
	now := m.now()
	if _, seen := m.revoked.has(id, now); seen || rec.Revoked || !now.Before(rec.Expires) {
		return Session{}, false
	}
	return rec.session(id), true
}

// denialFeeds hands the revocations Deny accepts to every running
// Revocations feed. A feed's queue is unbounded and Deny never blocks:
// a revocation dropped would leave a revoked session's socket open.
// Lock order: denialFeeds.mu, then a feed's mu.
type denialFeeds struct {
	mu    sync.Mutex
	feeds map[*denialQueue]struct{}
}

type denialQueue struct {
	mu      sync.Mutex
	pending []Revocation
	ready   chan struct{} // holds a token while pending is not empty
}

func (f *denialFeeds) join() *denialQueue {
	q := &denialQueue{ready: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.feeds == nil {
		f.feeds = map[*denialQueue]struct{}{}
	}
	f.feeds[q] = struct{}{}
	return q
}

func (f *denialFeeds) leave(q *denialQueue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.feeds, q)
}

func (f *denialFeeds) deliver(rev Revocation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for q := range f.feeds {
		q.mu.Lock()
		q.pending = append(q.pending, rev)
		q.mu.Unlock()
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
}

// take empties the queue.
func (q *denialQueue) take() []Revocation {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.pending
	q.pending = nil
	return out
}

// AvatarRevocations returns, for "sign out everywhere", the revocations
// RevokeAvatar would make of avatarID's sessions that have not expired,
// read from the avatar's index only, so that they can be denied on every
// node before RevokeAvatar stores them. Sessions already revoked are
// included: denying them again changes nothing.
func (m *Manager) AvatarRevocations(ctx context.Context, avatarID, reason string) ([]Revocation, error) {
	if err := validAvatar(avatarID); err != nil {
		return nil, err
	}
	entries, _, err := m.readIndex(ctx, avatarID)
	if err != nil {
		return nil, err
	}
	now := m.now()
	reason = cleanReason(reason)
	out := make([]Revocation, 0, len(entries))
	for _, e := range entries {
		if now.Before(e.Expires) {
			out = append(out, Revocation{SessionID: e.ID, Avatar: avatarID, Reason: reason, At: now, Expires: e.Expires})
		}
	}
	return out, nil
}
