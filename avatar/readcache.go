package avatar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// CacheFor bounds how long GetCached serves an avatar it read earlier. The
// change feed is what keeps the cache current; this bound only limits what
// a feed that went quiet without noticing could cost.
const CacheFor = time.Second

// readCacheSize bounds the cached avatars of one node; when full, an
// arbitrary entry makes room, which only costs a read later.
const readCacheSize = 1 << 16

// errCacheRunning refuses a second CacheReads on one Service.
var errCacheRunning = errors.New("avatar: reads are already cached")

// CacheReads keeps the cache GetCached reads from current until ctx ends:
// it follows the avatars bucket's change feed, and forgets an avatar as
// soon as this node hears that any node changed it (roles, credentials,
// wallets, sign counts). Changes made through this Service are forgotten
// before the change returns.
//
// The cache fails closed: it serves nothing while no feed runs, while the
// feed is lost (the NATS connection dropped; everything is forgotten
// then), and while the feed is behind the bucket; GetCached then reads the
// bucket like Get. So an avatar changed on another node is served from
// this node's cache at most until the feed delivers the change, and never
// longer than CacheFor.
func (s *Service) CacheReads(ctx context.Context) error {
	if !s.reads.claim() {
		return errCacheRunning
	}
	feed, err := s.avatars.Changes(ctx, ">")
	if err != nil {
		s.reads.release()
		return fmt.Errorf("avatar: cache reads: %w", err)
	}
	s.reads.resume()
	go func() {
		defer s.reads.release()
		for c := range feed {
			switch {
			case c.Lost:
				s.log.Warn("avatar change feed lost: reading every avatar from the store until it resumes")
				s.reads.suspend()
			case c.Resumed:
				s.log.Info("avatar change feed resumed: caching avatar reads again")
				s.reads.resume()
			default:
				s.reads.changed(c.Key, c.Behind == 0)
			}
		}
		if ctx.Err() == nil {
			s.log.Error("avatar change feed ended before its context; avatar reads are no longer cached")
		}
	}()
	return nil
}

// GetCached is Get for request paths that look an avatar up on every call
// (authenticating each API request): it serves the avatar from this
// node's cache when CacheReads keeps one and it holds the avatar, and
// reads the bucket otherwise.
func (s *Service) GetCached(ctx context.Context, avatarID string) (*Avatar, error) {
	now := s.now()
	a, epoch, ok := s.reads.get(avatarID, now)
	if ok {
		return a.clone(), nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rec, _, err := s.load(ctx, avatarID)
	if err != nil {
		return nil, err
	}
	s.reads.put(avatarID, &rec.Avatar, now, epoch)
	return rec.Avatar.clone(), nil
}

// readCache holds avatars as read from the bucket, for GetCached. Lock
// order: readCache.mu only; nothing is called while it is held.
type readCache struct {
	mu      sync.RWMutex
	running bool // a CacheReads feed runs
	lost    bool // ... but may be missing changes
	behind  bool // ... or has changes still to deliver
	// epoch counts forgettings: an avatar read before one is not cached
	// after it, since the read may predate the change.
	epoch   uint64
	entries map[string]cachedAvatar
}

type cachedAvatar struct {
	avatar *Avatar // never modified: GetCached hands out clones
	loaded time.Time
}

func (c *readCache) serving() bool { return c.running && !c.lost && !c.behind }

// get returns the cached avatar, or the epoch a read that misses must
// present to put.
func (c *readCache) get(id string, now time.Time) (*Avatar, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.serving() {
		return nil, c.epoch, false
	}
	e, ok := c.entries[id]
	if !ok || now.Before(e.loaded) || now.Sub(e.loaded) >= CacheFor {
		return nil, c.epoch, false
	}
	return e.avatar, c.epoch, true
}

func (c *readCache) put(id string, a *Avatar, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.serving() || c.epoch != epoch {
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]cachedAvatar)
	}
	if _, ok := c.entries[id]; !ok && len(c.entries) >= readCacheSize {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = cachedAvatar{avatar: a, loaded: now}
}

// changed drops an avatar the feed reports changed. caughtUp says whether
// the feed has delivered every change stored so far; until it has,
// nothing is served.
func (c *readCache) changed(id string, caughtUp bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.entries, id)
	c.behind = !caughtUp
}

// forget drops an avatar this node wrote, or may have written.
func (c *readCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.entries, id)
}

// suspend forgets everything and serves nothing until resume.
func (c *readCache) suspend() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.lost = true
	c.entries = nil
}

func (c *readCache) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.lost, c.behind = false, false
	c.entries = nil
}

func (c *readCache) claim() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return false
	}
	c.running, c.lost, c.behind = true, true, false
	return true
}

func (c *readCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.running = false
	c.entries = nil
}
