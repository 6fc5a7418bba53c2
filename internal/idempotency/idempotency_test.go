package idempotency

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

func testKeys(t *testing.T) *Keys {
	t.Helper()
	srv := natstest.RunServer(t)
	st, err := store.New(context.Background(), natstest.Connect(t, srv.ClientURL()), store.Config{RecordKey: []byte("zerorealm test record key 32 by!")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Bucket(context.Background(), store.BucketConfig{Name: "idempotency", Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	return New(b, "test")
}

// TestClaim walks a key through its life: new, the same request in
// progress, answered, another request refused, released, and scoped by
// principal.
func TestClaim(t *testing.T) {
	ctx := context.Background()
	k := testKeys(t)
	one, two := []byte("request one"), []byte("request two")
	if rec, err := k.Claim(ctx, "ada", "k1", one); rec != nil || err != nil {
		t.Fatalf("Claim(new) = %+v, %v; want nil, nil", rec, err)
	}
	if rec, err := k.Claim(ctx, "ada", "k1", one); err != nil || rec == nil || rec.Done() {
		t.Fatalf("Claim(same, in progress) = %+v, %v; want a record without an answer", rec, err)
	}
	if _, err := k.Claim(ctx, "ada", "k1", two); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("Claim(another request) = %v; want ErrKeyReused", err)
	}
	if rec, err := k.Claim(ctx, "bob", "k1", two); rec != nil || err != nil {
		t.Fatalf("Claim(same key, another principal) = %+v, %v; want new", rec, err)
	}
	if err := k.Complete(ctx, "ada", "k1", one, 201, []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	rec, err := k.Claim(ctx, "ada", "k1", one)
	if err != nil || rec == nil || !rec.Done() || rec.Status != 201 || string(rec.Answer) != `{"ok":true}` {
		t.Fatalf("Claim(answered) = %+v, %v; want the answer", rec, err)
	}
	if _, err := k.Claim(ctx, "ada", "k1", two); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("Claim(another request, answered key) = %v; want ErrKeyReused", err)
	}
	if err := k.Release(ctx, "bob", "k1"); err != nil {
		t.Fatal(err)
	}
	if rec, err := k.Claim(ctx, "bob", "k1", one); rec != nil || err != nil {
		t.Fatalf("Claim(after release) = %+v, %v; want new", rec, err)
	}
	for _, bad := range []string{"", strings.Repeat("k", MaxKeyLen+1)} {
		if _, err := k.Claim(ctx, "ada", bad, one); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Claim(key of %d bytes) = %v; want ErrInvalidKey", len(bad), err)
		}
	}
}
