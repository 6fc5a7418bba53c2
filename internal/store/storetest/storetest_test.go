package storetest

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/zerorealm/zerorealm/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewOpensAWorkingStore(t *testing.T) {
	ctx := context.Background()
	st := New(t, store.Config{})
	b, err := st.Bucket(ctx, store.BucketConfig{Name: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, "k", []byte("w")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
}
