package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

func TestBucket(t *testing.T) {
	srv := natstest.RunServer(t)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	ctx := context.Background()
	b, err := s.Bucket(ctx, BucketConfig{Name: "sessions", TTL: time.Hour})
	if err != nil {
		t.Fatalf("Bucket: %v", err)
	}
	if got, want := b.Name(), "ZR_sessions"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if _, err := s.Bucket(ctx, BucketConfig{Name: "sessions", TTL: time.Hour}); err != nil {
		t.Errorf("Bucket declared again: %v", err)
	}

	if _, err := b.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}

	rev, err := b.Create(ctx, "s1", []byte("v1"))
	if err != nil {
		t.Fatalf("Create(s1): %v", err)
	}
	if _, err := b.Create(ctx, "s1", []byte("again")); !errors.Is(err, ErrConflict) {
		t.Errorf("Create(s1) twice: error = %v, want ErrConflict", err)
	}
	rev2, err := b.Update(ctx, "s1", []byte("v2"), rev)
	if err != nil {
		t.Fatalf("Update(s1, rev %d): %v", rev, err)
	}
	if _, err := b.Update(ctx, "s1", []byte("stale"), rev); !errors.Is(err, ErrConflict) {
		t.Errorf("Update(s1) with stale revision %d: error = %v, want ErrConflict", rev, err)
	}
	e, err := b.Get(ctx, "s1")
	if err != nil || string(e.Value) != "v2" || e.Revision != rev2 {
		t.Errorf("Get(s1) = %q rev %d, %v; want \"v2\" rev %d", e.Value, e.Revision, err, rev2)
	}
	if err := b.Delete(ctx, "s1", rev); !errors.Is(err, ErrConflict) {
		t.Errorf("Delete(s1) with stale revision: error = %v, want ErrConflict", err)
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	updates, err := b.Watch(watchCtx, ">")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	next := func() Entry {
		t.Helper()
		select {
		case e, ok := <-updates:
			if !ok {
				t.Fatalf("watch channel closed early")
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("no watch update within 10s")
		}
		return Entry{}
	}
	if e := next(); e.Key != "s1" || string(e.Value) != "v2" || e.Deleted {
		t.Errorf("initial watch entry = %+v, want s1=v2", e)
	}
	if _, err := b.Put(ctx, "s2", []byte("p")); err != nil {
		t.Fatalf("Put(s2): %v", err)
	}
	if e := next(); e.Key != "s2" || string(e.Value) != "p" || e.Deleted {
		t.Errorf("watch entry after Put = %+v, want s2=p", e)
	}
	if err := b.Delete(ctx, "s1", rev2); err != nil {
		t.Fatalf("Delete(s1, rev %d): %v", rev2, err)
	}
	if e := next(); e.Key != "s1" || !e.Deleted {
		t.Errorf("watch entry after Delete = %+v, want s1 deleted", e)
	}
	stopWatch()
	for range updates { // must close once the context ends
	}

	if _, err := b.Get(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(deleted s1) error = %v, want ErrNotFound", err)
	}
	if _, err := b.Create(ctx, "s1", []byte("reborn")); err != nil {
		t.Errorf("Create(s1) after delete: %v", err)
	}
	if err := b.Delete(ctx, "s2", 0); err != nil {
		t.Errorf("unconditional Delete(s2): %v", err)
	}
	keys, err := b.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if want := []string{"s1"}; !slices.Equal(keys, want) {
		t.Errorf("Keys() = %q, want %q", keys, want)
	}
	for _, k := range []string{"av_1.a", "av_1.b", "av_2.a"} {
		if _, err := b.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if keys, err := b.KeysMatching(ctx, "av_1.*"); err != nil || !slices.Equal(slices.Sorted(slices.Values(keys)), []string{"av_1.a", "av_1.b"}) {
		t.Errorf("KeysMatching(av_1.*) = %q, %v; want av_1.a and av_1.b", keys, err)
	}
	if _, err := b.KeysMatching(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("KeysMatching(\"\") error = %v, want ErrInvalid", err)
	}

	empty, err := s.Bucket(ctx, BucketConfig{Name: "empty"})
	if err != nil {
		t.Fatalf("Bucket(empty): %v", err)
	}
	if keys, err := empty.Keys(ctx); err != nil || len(keys) != 0 {
		t.Errorf("Keys() of an empty bucket = %q, %v; want none", keys, err)
	}
}
