package avatar

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// TestGetCachedFollowsChanges runs two services on one NATS server, as two
// realm nodes, and checks that node B's cached reads never hide a change:
// made on node A (the change feed forgets it), made on node B (forgotten
// at once), or missed while B's connection was down (nothing is served
// until the feed watches again). The clock only creeps, so CacheFor never
// runs out and only the feed can refresh the cache.
func TestGetCachedFollowsChanges(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	clk := newClock()
	node := func(st *store.Store) *Service {
		s, err := New(ctx, st, Config{Origins: []string{testOrigin}, Logger: testLogger(t), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	stA, err := store.New(ctx, natstest.ConnectInProcess(t, srv), store.Config{Logger: testLogger(t), RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	ncB := natstest.Connect(t, srv.ClientURL())
	stB, err := store.New(ctx, ncB, store.Config{Logger: testLogger(t), RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	nodeA, nodeB := node(stA), node(stB)
	av, _ := register(t, nodeA, webauthntest.New(), "ivan")
	roles := func(s *Service) []string {
		t.Helper()
		a, err := s.GetCached(ctx, av.ID)
		if err != nil {
			t.Fatalf("GetCached: %v", err)
		}
		return a.Roles
	}
	setRoles := func(s *Service, r ...string) {
		t.Helper()
		if err := s.SetRoles(ctx, av.ID, r); err != nil {
			t.Fatalf("SetRoles(%q): %v", r, err)
		}
	}
	cached := func() bool {
		nodeB.reads.mu.RLock()
		defer nodeB.reads.mu.RUnlock()
		_, ok := nodeB.reads.entries[av.ID]
		return ok && nodeB.reads.serving()
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 10s: %s", what)
			}
		}
	}

	// Without a change feed nothing is cached: every call reads the bucket.
	if got := roles(nodeB); !slices.Equal(got, []string{"visitor"}) {
		t.Fatalf("roles = %q, want [visitor]", got)
	}
	setRoles(nodeA, "operator")
	if got := roles(nodeB); !slices.Equal(got, []string{"operator"}) {
		t.Fatalf("roles on node B without a feed after node A changed them = %q, want [operator]", got)
	}
	if cached() {
		t.Fatal("node B cached an avatar without a change feed")
	}

	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	if err := nodeB.CacheReads(feedCtx); err != nil {
		t.Fatalf("CacheReads: %v", err)
	}
	if err := nodeB.CacheReads(feedCtx); !errors.Is(err, errCacheRunning) {
		t.Fatalf("second CacheReads = %v, want errCacheRunning", err)
	}
	if got := roles(nodeB); !slices.Equal(got, []string{"operator"}) || !cached() {
		t.Fatalf("roles = %q, cached %v; want [operator], cached", got, cached())
	}
	// A caller changing what it got does not change the cache.
	a, _ := nodeB.GetCached(ctx, av.ID)
	a.Roles[0] = "admin"
	if got := roles(nodeB); !slices.Equal(got, []string{"operator"}) {
		t.Fatalf("roles after a caller edited its copy = %q, want [operator]", got)
	}

	// Node A's change reaches node B's cache through the feed alone.
	setRoles(nodeA, "supervisor")
	eventually("node B sees node A's change", func() bool { return slices.Equal(roles(nodeB), []string{"supervisor"}) })

	// Node B's own change is seen at once.
	setRoles(nodeB, "visitor")
	if got := roles(nodeB); !slices.Equal(got, []string{"visitor"}) {
		t.Fatalf("roles right after node B changed them = %q, want [visitor]", got)
	}

	// The connection drops: the cache forgets everything and serves
	// nothing until the feed watches again, then caches anew.
	roles(nodeB)
	if !cached() {
		t.Fatal("avatar not cached before the drop")
	}
	if err := ncB.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	eventually("the cache forgets everything when the feed is lost", func() bool {
		nodeB.reads.mu.RLock()
		defer nodeB.reads.mu.RUnlock()
		return len(nodeB.reads.entries) == 0
	})
	eventually("the cache serves again once the feed resumed", func() bool { roles(nodeB); return cached() })
	setRoles(nodeA, "operator")
	eventually("node B sees node A's change after the feed resumed", func() bool { return slices.Equal(roles(nodeB), []string{"operator"}) })

	// When the feed ends, the cache is off.
	stopFeed()
	eventually("the cache is off once the feed ended", func() bool {
		nodeB.reads.mu.RLock()
		defer nodeB.reads.mu.RUnlock()
		return !nodeB.reads.running
	})
	roles(nodeB)
	if cached() {
		t.Fatal("node B cached an avatar after its feed ended")
	}
}

// TestReadCacheFailsClosed checks the cache's rules without a server: a
// read that began before a change is not cached, and nothing is served
// while the feed is behind or lost.
func TestReadCacheFailsClosed(t *testing.T) {
	var c readCache
	now := time.Now()
	a := &Avatar{ID: "av_1"}
	if !c.claim() {
		t.Fatal("claim refused")
	}
	_, epoch, _ := c.get("av_1", now)
	c.put("av_1", a, now, epoch)
	if _, _, ok := c.get("av_1", now); ok {
		t.Fatal("served before the feed started")
	}
	c.resume()
	_, epoch, _ = c.get("av_1", now)
	c.changed("av_2", true) // a change lands while av_1 is being read
	c.put("av_1", a, now, epoch)
	if _, _, ok := c.get("av_1", now); ok {
		t.Fatal("cached a read that began before a change")
	}
	_, epoch, _ = c.get("av_1", now)
	c.put("av_1", a, now, epoch)
	if got, _, ok := c.get("av_1", now); !ok || got != a {
		t.Fatal("not served after a clean read")
	}
	if _, _, ok := c.get("av_1", now.Add(CacheFor)); ok {
		t.Fatal("served after CacheFor")
	}
	c.changed("av_2", false) // the feed is behind: av_1 may have changed too
	if _, _, ok := c.get("av_1", now); ok {
		t.Fatal("served while the feed is behind")
	}
	c.changed("av_3", true)
	if _, _, ok := c.get("av_1", now); !ok {
		t.Fatal("not served once the feed caught up")
	}
	c.forget("av_1")
	if _, _, ok := c.get("av_1", now); ok {
		t.Fatal("served after this node wrote it")
	}
	_, epoch, _ = c.get("av_1", now)
	c.put("av_1", a, now, epoch)
	c.suspend()
	if _, _, ok := c.get("av_1", now); ok {
		t.Fatal("served while the feed is lost")
	}
	c.resume()
	if _, _, ok := c.get("av_1", now); ok {
		t.Fatal("served, after the feed resumed, what was cached before it was lost")
	}
	c.release()
	if c.claim() != true {
		t.Fatal("claim refused after release")
	}
}
