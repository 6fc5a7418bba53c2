package session

import (
	"fmt"
	"sync"
	"time"
)

// AvatarRevocation ends every session of an avatar begun at or before At:
// "sign out everywhere", denied on every node before the store lists, let
// alone revokes, the avatar's sessions (see DenyAvatar).
type AvatarRevocation struct {
	Avatar string
	Reason string
	At     time.Time
}

// DenyAvatar makes this node refuse, from now on and without reading the
// store for it, every session of rev.Avatar created at or before rev.At:
// Authenticate, AuthenticateCached and Touch answer ErrRevoked with rev's
// reason for such a session once they have its record, cached or read.
// A session this node can read neither way is not authenticated anyway
// (the store's error), so the denial holds while the sessions bucket
// cannot be read or written, as Deny does for one session; RevokeAvatar
// stores the revocations after it.
//
// The denial lasts until every session it can cover has expired
// (rev.At plus Lifetime) and cannot be withdrawn: a later one for the
// same avatar only moves At forward. Callers must only pass revocations
// they authenticated. DenyAvatar refuses, changing nothing, a malformed
// avatar ID, an At ahead of this node's clock by more than the store's
// margin, or one so old that no session it covers is live.
func (m *Manager) DenyAvatar(rev AvatarRevocation) error {
	if err := validAvatar(rev.Avatar); err != nil {
		return err
	}
	now := m.now()
	if rev.At.IsZero() {
		rev.At = now
	}
	switch {
	case rev.At.After(now.Add(maxDeniedAhead)):
		return fmt.Errorf("%w: avatar %s signed out at %v, ahead of this node's clock", ErrInvalidArgument, rev.Avatar, rev.At)
	case !now.Before(rev.At.Add(m.lifetime)):
		return fmt.Errorf("%w: avatar %s signed out at %v: every session it covers has expired", ErrInvalidArgument, rev.Avatar, rev.At)
	}
	reason := cleanReason(rev.Reason)
	m.avatarsDenied.put(now, rev.Avatar, avatarDenial{at: rev.At, until: rev.At.Add(m.lifetime), reason: reason})
	// The sessions this node has read are denied one by one too: they
	// are refused before any read, even once their cached copy is too
	// old to authenticate, and the Revocations feeds close their live
	// connections now.
	for id, rec := range m.cache.ofAvatar(rev.Avatar) {
		if rec.Created.After(rev.At) || !now.Before(rec.Expires) {
			continue
		}
		if err := m.Deny(Revocation{SessionID: id, Avatar: rev.Avatar, Reason: reason, At: rev.At, Expires: rec.Expires}); err != nil {
			m.log.Warn("sign-out everywhere: a remembered session not denied", "session", id, "err", err)
		}
	}
	return nil
}

// avatarDenials is the node's "sign out everywhere" list, by avatar.
// Lock order: avatarDenials.mu only.
type avatarDenials struct {
	mu sync.RWMutex
	by map[string]avatarDenial
}

type avatarDenial struct {
	// at: sessions created at or before it are refused, until until.
	at, until time.Time
	reason    string
}

// put merges d into avatar's denial: the later At wins (it covers more
// sessions), with its reason, and the later until. Denials over at now
// are dropped.
func (a *avatarDenials) put(now time.Time, avatar string, d avatarDenial) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.by == nil {
		a.by = map[string]avatarDenial{}
	}
	if old, ok := a.by[avatar]; ok && old.at.After(d.at) {
		d.at, d.reason = old.at, old.reason
	}
	if old, ok := a.by[avatar]; ok && old.until.After(d.until) {
		d.until = old.until
	}
	a.by[avatar] = d
	for k, e := range a.by {
		if !now.Before(e.until) {
			delete(a.by, k)
		}
	}
}

func (a *avatarDenials) get(avatar string, now time.Time) (avatarDenial, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	d, ok := a.by[avatar]
	return d, ok && now.Before(d.until)
}

// covers reports whether a denial refuses the session rec: its avatar
// signed out everywhere after the session was created. A record without
// a creation time predates them all.
func (a *avatarDenials) covers(rec *record, now time.Time) bool {
	d, ok := a.get(rec.Avatar, now)
	return ok && !rec.Created.After(d.at)
}
