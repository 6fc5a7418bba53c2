package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestLeaderReads checks that a leader-read bucket, and one whose leader
// confirms absence, answer like a direct one for present, deleted and
// missing keys, on a replicated bucket where the difference matters: a key
// created a moment ago is found at once, every time, whichever replica the
// direct get would have reached.
func TestLeaderReads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	ctx := context.Background()
	servers := natstest.RunCluster(t, 3)
	s := newTestStore(t, natstest.Connect(t, servers[1].ClientURL()), Config{})
	for _, cfg := range []BucketConfig{
		{Name: "leader", LeaderReads: true},
		{Name: "confirmed", LeaderConfirmsAbsence: true},
	} {
		t.Run(cfg.Name, func(t *testing.T) {
			b, err := s.Bucket(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				key := fmt.Sprintf("k%d", i)
				rev, err := b.Create(ctx, key, []byte{byte(i)})
				if err != nil {
					t.Fatal(err)
				}
				// Read-your-write of a new key, immediately, every time.
				e, err := b.Get(ctx, key)
				if err != nil || e.Revision != rev || e.Value[0] != byte(i) {
					t.Fatalf("Get(%q) right after Create = %+v, %v; want revision %d value %d", key, e, err, rev, i)
				}
			}
			if err := b.Delete(ctx, "k0", 0); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Get(ctx, "k0"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a deleted key = %v, want ErrNotFound", err)
			}
			if _, err := b.Get(ctx, "never"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a missing key = %v, want ErrNotFound", err)
			}
		})
	}
}
