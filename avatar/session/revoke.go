package session

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// maxRevokeAttempts bounds the compare-and-set retries of one revocation.
// Only touches compete, at most one per TouchEvery per session.
const maxRevokeAttempts = 16

// ReasonUnspecified replaces an empty revocation reason, so every node's
// log and every later Authenticate still say something.
const ReasonUnspecified = "unspecified"

// Revocation is one session revoked, as every node's watcher sees it.
type Revocation struct {
	SessionID string
	Avatar    string
	Reason    string
	At        time.Time // on the revoking node's clock
	// Expires is the session's own end: a revocation matters until then.
	Expires time.Time
}

// Revoke marks the session revoked with reason (truncated to 256 bytes).
// It keeps the record until the session would have expired, so every node
// learns why. Revoking a revoked session changes nothing, not even the
// reason. Unknown or malformed IDs are ErrInvalidSession.
func (m *Manager) Revoke(ctx context.Context, sessionID, reason string) error {
	if !validID(sessionID) {
		return fmt.Errorf("%w: malformed session ID", ErrInvalidSession)
	}
	_, _, err := m.revoke(ctx, sessionID, reason)
	return err
}

// revoke marks id revoked. changed reports whether this call did it, live
// whether the session could still authenticate until then.
func (m *Manager) revoke(ctx context.Context, id, reason string) (changed, live bool, err error) {
	return m.revokeUntil(ctx, id, reason, time.Time{})
}

// revokeUntil is revoke, of a session created at or before until only
// (zero: whenever it was created).
func (m *Manager) revokeUntil(ctx context.Context, id, reason string, until time.Time) (changed, live bool, err error) {
	reason = cleanReason(reason)
	for attempt := 1; ; attempt++ {
		rec, rev, err := m.load(ctx, id)
		if err != nil {
			return false, false, err
		}
		if rec.Revoked || !until.IsZero() && rec.Created.After(until) {
			return false, false, nil
		}
		now := m.now()
		live = m.check(id, &rec, now) == nil
		rec.Revoked, rec.RevokedAt, rec.RevokedReason = true, now, reason
		value, err := rec.marshal()
		if err != nil {
			return false, false, err
		}
		_, err = m.sessions.Update(ctx, id, value, rev)
		switch {
		case err == nil:
			m.revoked.add(id, now, rec.Expires)
			m.cache.evict(id)
			m.log.Info("session revoked", "session", id, "avatar", rec.Avatar, "reason", reason)
			return true, live, nil
		case !errors.Is(err, store.ErrConflict) || attempt == maxRevokeAttempts:
			return false, false, fmt.Errorf("session: revoke %s: %w", id, err)
		case ctx.Err() != nil:
			return false, false, fmt.Errorf("session: revoke %s: %w", id, ctx.Err())
		}
	}
}

// RevokeAvatar revokes every session of avatarID ("sign out everywhere",
// or the realm reacting to a cloned credential) and returns how many of
// them could still authenticate. It tries every session even when some
// fail, and returns the failures joined.
func (m *Manager) RevokeAvatar(ctx context.Context, avatarID, reason string) (int, error) {
	return m.RevokeAvatarUntil(ctx, avatarID, reason, time.Time{})
}

// RevokeAvatarUntil is RevokeAvatar for the sessions created at or before
// until (none after it, zero: every one): the store's part of an
// AvatarRevocation (see DenyAvatar), which may be stored seconds after it
// was made, by then after the avatar signed in again.
func (m *Manager) RevokeAvatarUntil(ctx context.Context, avatarID, reason string, until time.Time) (int, error) {
	if err := validAvatar(avatarID); err != nil {
		return 0, err
	}
	entries, _, err := m.readIndex(ctx, avatarID)
	if err != nil {
		return 0, err
	}
	reason = cleanReason(reason)
	revoked := 0
	var errs []error
	for _, e := range entries {
		changed, live, err := m.revokeUntil(ctx, e.ID, m.firstReason(e.ID, reason, until), until)
		// A session not stored yet whose lifetime began after until is
		// being created after the revocation: it is not one of those.
		created := e.Expires.Add(-m.lifetime)
		if errors.Is(err, ErrInvalidSession) && m.now().Before(e.Expires) && (until.IsZero() || !created.After(until)) {
			changed, live, err = m.preempt(ctx, avatarID, e, reason)
		}
		switch {
		case errors.Is(err, ErrInvalidSession):
			// Past its lifetime and dropped by the store: nothing to do.
		case err != nil:
			errs = append(errs, err)
		case changed && live:
			revoked++
		}
	}
	return revoked, errors.Join(errs...)
}

// firstReason is the reason to store for session id when the avatar-wide
// revocation made at until stores it: the reason of a revocation of that
// one session this node denied at or before until and has not seen stored
// yet, or else reason. Both are stored by background attempts once the
// bucket has a leader again, in no set order; the record keeps the reason
// of the revocation made first, whichever attempt lands first.
func (m *Manager) firstReason(id, reason string, until time.Time) string {
	if until.IsZero() {
		return reason
	}
	if e, ok := m.revoked.denied(id, m.now()); ok && e.reason != "" && !e.at.After(until) {
		return e.reason
	}
	return reason
}

// preempt writes a revoked placeholder for an indexed session whose record
// is not there yet: its Create is in flight (or failed), and must not
// succeed after "sign out everywhere". If the record appears first, it is
// revoked instead.
func (m *Manager) preempt(ctx context.Context, avatarID string, e indexEntry, reason string) (changed, live bool, err error) {
	now := m.now()
	placeholder := record{Avatar: avatarID, Expires: e.Expires, Revoked: true, RevokedAt: now, RevokedReason: reason}
	value, err := placeholder.marshal()
	if err != nil {
		return false, false, err
	}
	_, err = m.sessions.Create(ctx, e.ID, value)
	switch {
	case err == nil:
		m.log.Info("session pre-empted before creation", "session", e.ID, "avatar", avatarID, "reason", reason)
		return false, false, nil
	case errors.Is(err, store.ErrConflict):
		return m.revoke(ctx, e.ID, reason)
	default:
		return false, false, fmt.Errorf("session: revoke %s: %w", e.ID, err)
	}
}

// List returns avatarID's sessions that are neither past their lifetime
// nor idle, newest first. Revoked ones are included (Revoked set) until
// they would have expired, so the avatar can see what was revoked and why.
func (m *Manager) List(ctx context.Context, avatarID string) ([]Session, error) {
	if err := validAvatar(avatarID); err != nil {
		return nil, err
	}
	entries, _, err := m.readIndex(ctx, avatarID)
	if err != nil {
		return nil, err
	}
	sessions := []Session{}
	for _, e := range entries {
		now := m.now()
		if !now.Before(e.Expires) {
			continue
		}
		rec, _, err := m.load(ctx, e.ID)
		if errors.Is(err, ErrInvalidSession) {
			continue // creation in flight or failed
		}
		if err != nil {
			return nil, err
		}
		if rec.Hash == nil { // a placeholder: never issued
			continue
		}
		if err := m.check(e.ID, &rec, now); err != nil && !errors.Is(err, ErrRevoked) {
			continue
		}
		sessions = append(sessions, rec.session(e.ID))
	}
	slices.SortStableFunc(sessions, func(a, b Session) int { return cmp.Compare(b.Created.UnixNano(), a.Created.UnixNano()) })
	return sessions, nil
}

// revokedMarker is how a revoked record's JSON spells its flag. Testing for
// it first spares the watcher decoding every touch.
var revokedMarker = []byte(`"revoked":true`)

// Revocations streams every revocation of a session not yet past its
// lifetime, made by any node: first those already revoked when it is
// called, then each new one as it is stored. Consumers close the session's
// connections, which is idempotent, and must treat delivery as at least
// once. The channel closes when ctx ends (or the store's watch fails,
// which is logged); the caller keeps receiving until then.
func (m *Manager) Revocations(ctx context.Context) (<-chan Revocation, error) {
	updates, err := m.sessions.Watch(ctx, ">")
	if err != nil {
		return nil, fmt.Errorf("session: watch revocations: %w", err)
	}
	out := make(chan Revocation, 64)
	m.cache.feeds.Add(1)
	go func() {
		defer close(out)
		defer m.cache.feedEnded()
		defer func() {
			if ctx.Err() == nil {
				m.log.Error("revocation watch ended before its context; revocations are no longer delivered")
			}
		}()
		denied := m.denials.join()
		defer m.denials.leave(denied)
		send := func(rev Revocation) bool {
			select {
			case out <- rev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case e, ok := <-updates:
				if !ok {
					return
				}
				if rev, ok := m.storedRevocation(e); ok && !send(rev) {
					return
				}
			case <-denied.ready:
				// Denied ones were refused by Deny already.
				for _, rev := range denied.take() {
					if !send(rev) {
						return
					}
				}
			}
		}
	}()
	return out, nil
}

// storedRevocation is the revocation a store update carries, if it
// carries one of a session not past its lifetime. It is recorded before
// anyone hears of it: a consumer that acts on the revocation must find the
// session refused on this node.
func (m *Manager) storedRevocation(e store.Entry) (Revocation, bool) {
	if e.Deleted || !bytes.Contains(e.Value, revokedMarker) {
		return Revocation{}, false
	}
	rec, err := unmarshalRecord(e.Value)
	if err != nil {
		m.log.Warn("undecodable session record", "session", e.Key, "err", err)
		return Revocation{}, false
	}
	if !rec.Revoked || !m.now().Before(rec.Expires) {
		return Revocation{}, false
	}
	m.revoked.add(e.Key, rec.RevokedAt, rec.Expires)
	m.cache.evict(e.Key)
	return Revocation{SessionID: e.Key, Avatar: rec.Avatar, Reason: rec.RevokedReason, At: rec.RevokedAt, Expires: rec.Expires}, true
}

func cleanReason(reason string) string {
	if reason == "" {
		return ReasonUnspecified
	}
	return truncate(reason, maxReasonLen)
}
