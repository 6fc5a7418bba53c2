package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestChanges checks what a cache learns from a Changes feed: each write
// and delete after the feed started (nothing from before), and, when the
// connection drops, Lost before anything else, then Resumed once it
// watches again, with the changes after that.
func TestChanges(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	s := newTestStore(t, nc, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := s.Bucket(ctx, BucketConfig{Name: "changes"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Changes(ctx, "bad pattern"); err == nil {
		t.Error("Changes(\"bad pattern\") succeeded, want an invalid pattern refused")
	}
	feed, err := b.Changes(ctx, "av.>")
	if err != nil {
		t.Fatal(err)
	}
	next := func() Change {
		t.Helper()
		select {
		case c, ok := <-feed:
			if !ok {
				t.Fatal("feed closed")
			}
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no change reported within 10s")
		}
		return Change{}
	}

	rev, err := b.Put(ctx, "av.one", []byte("big value the feed does not fetch"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "other", []byte("x")); err != nil { // outside the pattern
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "av.two", 0); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Key != "av.one" || c.Revision != rev || c.Deleted || c.Lost || c.Resumed {
		t.Fatalf("first change = %+v, want av.one at revision %d", c, rev)
	}
	if c := next(); c.Key != "av.two" || !c.Deleted || c.Behind != 0 {
		t.Fatalf("second change = %+v, want the delete of av.two, caught up", c)
	}

	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	if c := next(); !c.Lost {
		t.Fatalf("after the connection dropped: %+v, want Lost", c)
	}
	if c := next(); !c.Resumed {
		t.Fatalf("after reconnecting: %+v, want Resumed", c)
	}
	rev, err = b.Put(ctx, "av.three", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Key != "av.three" || c.Revision != rev {
		t.Fatalf("change after resuming = %+v, want av.three at revision %d", c, rev)
	}

	cancel()
	for range feed { // closes once ctx ended
	}
}

// TestLast: a key's last change tells a key that never had a value from one
// whose value was deleted, and when.
func TestLast(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	s := newTestStore(t, nc, Config{})
	ctx := context.Background()
	b, err := s.Bucket(ctx, BucketConfig{Name: "last"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Last(ctx, "never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Last of a key never written: %v, want ErrNotFound", err)
	}
	rev, err := b.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := b.Last(ctx, "k"); err != nil || e.Deleted || string(e.Value) != "v" || e.Revision != rev {
		t.Fatalf("Last after a put = %+v, %v; want v at revision %d", e, err, rev)
	}
	before := time.Now()
	if err := b.Delete(ctx, "k", 0); err != nil {
		t.Fatal(err)
	}
	e, err := b.Last(ctx, "k")
	if err != nil || !e.Deleted || e.Value != nil || e.Created.Before(before.Add(-time.Second)) {
		t.Fatalf("Last after a delete = %+v, %v; want deleted, no value, at about %v", e, err, before)
	}
	if _, err := b.Last(ctx, "bad key!"); err == nil {
		t.Error("Last of an invalid key succeeded")
	}
}
