package session

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// CacheFor bounds how stale a session AuthenticateCached serves may be.
const CacheFor = time.Second

// cacheSize bounds the cached sessions of one node; when full, an
// arbitrary entry makes room, which only costs a read later.
const cacheSize = 1 << 16

// AuthenticateCached is Authenticate for request paths that authenticate
// every call, with a per-node cache of live sessions in front of the
// store's leader read. A session is served from the cache for at most
// CacheFor after it was read, and only while its LastSeen is younger than
// TouchEvery, so idle expiry and touches behave as without the cache.
//
// Revocations evict it: those made through this Manager at once, those of
// other nodes when this node's Revocations feed receives them, before the
// feed delivers them (a consumer that closes a revoked session's
// connections never races a cached copy). The cache works only while a
// Revocations feed runs; without one this is Authenticate. So a session
// revoked elsewhere is accepted here at most until the revocation reaches
// this node's watch, and never longer than CacheFor.
func (m *Manager) AuthenticateCached(ctx context.Context, token string) (Session, error) {
	if m.cache.feeds.Load() == 0 {
		return m.Authenticate(ctx, token)
	}
	hash, id, ok := parseToken(token)
	if !ok {
		return Session{}, errMalformedToken
	}
	if err := m.deniedErr(id); err != nil {
		return Session{}, err
	}
	now := m.now()
	if rec, ok := m.cache.get(id, now, m.touchEvery); ok {
		if subtle.ConstantTimeCompare(rec.Hash, hash[:]) != 1 {
			return Session{}, fmt.Errorf("%w: unknown session", ErrInvalidSession)
		}
		if err := m.check(id, &rec, now); err != nil {
			return Session{}, err
		}
		return rec.session(id), nil
	}
	epoch := m.cache.epoch.Load()
	rec, err := m.authenticate(ctx, hash, id)
	if err != nil {
		return Session{}, err
	}
	m.cache.put(id, rec, now, epoch)
	return rec.session(id), nil
}

// liveCache holds sessions found live, by session ID. Lock order:
// liveCache.mu only; nothing is called while it is held.
type liveCache struct {
	feeds atomic.Int32 // running Revocations feeds
	// epoch counts evictions: a session read before one is not cached
	// after it, since the read may predate the revocation.
	epoch atomic.Uint64

	mu      sync.RWMutex
	entries map[string]cachedSession
}

type cachedSession struct {
	rec    record
	loaded time.Time
}

func (c *liveCache) get(id string, now time.Time, touchEvery time.Duration) (record, bool) {
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || now.Before(e.loaded) || now.Sub(e.loaded) >= CacheFor || now.Sub(e.rec.LastSeen) >= touchEvery {
		return record{}, false
	}
	return e.rec, true
}

// ofAvatar returns the cached records of avatar's sessions, by ID,
// whatever their age.
func (c *liveCache) ofAvatar(avatar string) map[string]record {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string]record{}
	for id, e := range c.entries {
		if e.rec.Avatar == avatar {
			out[id] = e.rec
		}
	}
	return out
}

// recall returns id's cached record whatever its age.
func (c *liveCache) recall(id string) (record, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[id]
	return e.rec, ok
}

func (c *liveCache) put(id string, rec record, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch.Load() != epoch || c.feeds.Load() == 0 {
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]cachedSession)
	}
	if _, ok := c.entries[id]; !ok && len(c.entries) >= cacheSize {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = cachedSession{rec: rec, loaded: now}
}

// evict drops a revoked session. The epoch moves first, so a read in
// flight cannot put it back.
func (c *liveCache) evict(id string) {
	c.epoch.Add(1)
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// feedEnded stops caching when the last feed ends: nothing would evict
// revocations of other nodes any more.
func (c *liveCache) feedEnded() {
	c.epoch.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.feeds.Add(-1) == 0 {
		c.entries = nil
	}
}
