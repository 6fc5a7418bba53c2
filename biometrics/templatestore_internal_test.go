package biometrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
)

// TestTemplatePutWaitsForABuffer: Put holds one of putsInFlight buffers
// from before the template is encoded until the store answered. With all
// of them taken, a Put waits, gives up with its context and stores
// nothing; given one back, it stores.
func TestTemplatePutWaitsForABuffer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := make([]byte, 32)
	ts, err := NewTemplateStore(ctx, storetest.New(t, store.Config{}), key)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &Template{Windows: 2, Mean: make([]float64, NumCoreFeatures), Cov: make([]float64, packedLen(NumCoreFeatures))}
	var held [][]byte
	for range putsInFlight {
		held = append(held, <-ts.putBufs)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if err := ts.Put(short, "ada", tmpl); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put with every buffer taken = %v, want %v", err, context.DeadlineExceeded)
	}
	if _, err := ts.Get(ctx, "ada"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after the Put gave up = %v, want %v", err, store.ErrNotFound)
	}
	ts.putBufs <- held[0]
	if err := ts.Put(ctx, "ada", tmpl); err != nil {
		t.Fatalf("Put with a buffer back: %v", err)
	}
	if got, err := ts.Get(ctx, "ada"); err != nil || got.Windows != 2 {
		t.Fatalf("Get = %+v, %v; want the template put", got, err)
	}
	if n := len(ts.putBufs); n != 1 {
		t.Errorf("buffers free after the Put = %d, want the one given back", n)
	}
}
