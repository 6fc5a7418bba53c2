package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

// TestMain: the store under test runs goroutines of its own, and each must
// end with the test that started it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testBucket(t *testing.T) *store.Bucket {
	t.Helper()
	srv := natstest.RunServer(t)
	st, err := store.New(context.Background(), natstest.ConnectInProcess(t, srv), store.Config{RecordKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Bucket(context.Background(), store.BucketConfig{Name: "idempotency", TTL: time.Hour, Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digestOf(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func TestClaim(t *testing.T) {
	ctx := context.Background()
	bucket := testBucket(t)
	keys := New(bucket, "assets")
	one, two := digestOf("one"), digestOf("two")

	claim := func(caller, key string, digest []byte) (bool, error) {
		t.Helper()
		return keys.Claim(ctx, caller, key, digest)
	}
	for i := range 2 {
		if first, err := claim("ada", "", one); !first || err != nil {
			t.Fatalf("request %d without a key = %v, %v; want new every time", i, first, err)
		}
	}
	if first, err := claim("ada", "k1", one); !first || err != nil {
		t.Fatalf("first use of a key = %v, %v; want new", first, err)
	}
	if first, err := claim("ada", "k1", one); first || err != nil {
		t.Fatalf("retry with the same key and request = %v, %v; want a replay", first, err)
	}
	if _, err := claim("ada", "k1", two); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("the key reused for another request: %v, want ErrKeyReused", err)
	}
	// The refused reuse changed nothing: the key still names the first.
	if first, err := claim("ada", "k1", one); first || err != nil {
		t.Fatalf("after a refused reuse, the first request's retry = %v, %v; want a replay", first, err)
	}
	if first, err := claim("bob", "k1", two); !first || err != nil {
		t.Fatalf("another caller's key of the same text = %v, %v; want new: keys are per caller", first, err)
	}
	if first, err := New(bucket, "twins").Claim(ctx, "ada", "k1", two); !first || err != nil {
		t.Fatalf("the same caller and key in another namespace = %v, %v; want new", first, err)
	}

	long := strings.Repeat("k", MaxKeyLength+1)
	if _, err := claim("ada", long, one); !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("a key of %d characters: %v, want ErrKeyTooLong", len(long), err)
	}
	stored, err := bucket.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 3 {
		t.Fatalf("bucket holds %d keys, want 3 (ada's and bob's k1, and ada's in the other namespace): a refused key was stored", len(stored))
	}
	if first, err := claim("ada", strings.Repeat("k", MaxKeyLength), one); !first || err != nil {
		t.Fatalf("a key of exactly %d characters = %v, %v; want new", MaxKeyLength, first, err)
	}
}

// TestClaimStoreFailure: when the store cannot answer, Claim says so and
// claims nothing, so the retry the client then sends is new.
func TestClaimStoreFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	keys := New(testBucket(t), "assets")
	cancel()
	if first, err := keys.Claim(ctx, "ada", "k1", digestOf("one")); first || err == nil {
		t.Fatalf("with a cancelled context Claim = %v, %v; want an error", first, err)
	}
	if first, err := keys.Claim(context.Background(), "ada", "k1", digestOf("one")); !first || err != nil {
		t.Fatalf("after the failed claim = %v, %v; want new", first, err)
	}
}
