package store

import (
	"context"
	"errors"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestLeaderReads checks that a leader-read bucket answers like a direct
// one for present, deleted and missing keys, on a replicated bucket where
// the difference matters.
func TestLeaderReads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	ctx := context.Background()
	servers := natstest.RunCluster(t, 3)
	s := newTestStore(t, natstest.Connect(t, servers[1].ClientURL()), Config{})
	b, err := s.Bucket(ctx, BucketConfig{Name: "leader", LeaderReads: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		key := "k" + string(rune('a'+i%26))
		rev, err := b.Put(ctx, key, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		// Read-your-write through the leader, immediately, every time.
		e, err := b.Get(ctx, key)
		if err != nil || e.Revision != rev || e.Value[0] != byte(i) {
			t.Fatalf("Get(%q) right after Put = %+v, %v; want revision %d value %d", key, e, err, rev, i)
		}
	}
	if err := b.Delete(ctx, "ka", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "ka"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a deleted key = %v, want ErrNotFound", err)
	}
	if _, err := b.Get(ctx, "never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key = %v, want ErrNotFound", err)
	}
}
