package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// BenchmarkCheck measures one readiness check of a store that declared 20
// buckets, about what a realm node declares: the cost the realm's prober
// pays once a second.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	srv := natstest.RunServer(b)
	s := newTestStore(b, natstest.ConnectInProcess(b, srv), Config{})
	for i := range 20 {
		if _, err := s.Bucket(ctx, BucketConfig{Name: fmt.Sprintf("check%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if h := s.Check(ctx); !h.OK() {
			b.Fatal(h.Err)
		}
	}
}
