package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
)

func testKeys(t *testing.T) *Keys {
	t.Helper()
	st := storetest.New(t, store.Config{RecordKey: []byte("zerorealm test record key 32 by!")})
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

// TestReleaseHeld frees a held key only at the revision its claim read:
// a key answered, or freed and claimed anew, since then stays as it is.
func TestReleaseHeld(t *testing.T) {
	ctx := context.Background()
	k := testKeys(t)
	fp := []byte("request")
	if rec, err := k.Claim(ctx, "ada", "held", fp); rec != nil || err != nil {
		t.Fatalf("Claim(new) = %+v, %v", rec, err)
	}
	held, err := k.Claim(ctx, "ada", "held", fp)
	if err != nil || held == nil || held.Revision == 0 || held.Created.IsZero() {
		t.Fatalf("Claim(held) = %+v, %v; want the record with its revision and time", held, err)
	}
	if _, err := k.ReleaseHeld(ctx, "ada", "held", 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ReleaseHeld(revision 0) = %v, want ErrInvalid", err)
	}
	// Answered since the claim was read: not freed.
	if err := k.Complete(ctx, "ada", "held", fp, 200, []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.ReleaseHeld(ctx, "ada", "held", held.Revision); ok || err != nil {
		t.Fatalf("ReleaseHeld(answered since) = %v, %v; want false, nil", ok, err)
	}
	if rec, err := k.Claim(ctx, "ada", "held", fp); err != nil || rec == nil || !rec.Done() {
		t.Fatalf("the answer after a stale release: %+v, %v", rec, err)
	}
	// Still the record read: freed, once, and the key can be claimed anew.
	if rec, err := k.Claim(ctx, "ada", "other", fp); rec != nil || err != nil {
		t.Fatal(rec, err)
	}
	other, err := k.Claim(ctx, "ada", "other", fp)
	if err != nil || other == nil {
		t.Fatal(other, err)
	}
	if ok, err := k.ReleaseHeld(ctx, "ada", "other", other.Revision); !ok || err != nil {
		t.Fatalf("ReleaseHeld(held) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := k.ReleaseHeld(ctx, "ada", "other", other.Revision); ok || err != nil {
		t.Fatalf("ReleaseHeld(again) = %v, %v; want false, nil", ok, err)
	}
	if rec, err := k.Claim(ctx, "ada", "other", fp); rec != nil || err != nil {
		t.Fatalf("Claim(after release) = %+v, %v; want a new claim", rec, err)
	}
}

// laggingReplica is a real bucket whose creates are checked against a
// replica that lags after an outage: a key freed on the stream's leader
// (a delete marker there) is unknown to it, so the create calls the key
// held, as the NATS client's create does when its check of the marker
// reaches such a replica.
type laggingReplica struct{ *store.Bucket }

func (b laggingReplica) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if last, err := b.Last(ctx, key); err == nil && last.Deleted {
		return 0, fmt.Errorf("store: create %s: %w", key, store.ErrConflict)
	}
	return b.Bucket.Create(ctx, key, value)
}

// TestClaimFreedKeyBehindLaggingReplica: a key freed (its first request
// refused, or freed as never sent) is claimed again although the create
// calls it held, the leader's delete marker taken at its revision: before,
// every retry answered 503 until the replica caught up. Of two claims,
// one wins.
func TestClaimFreedKeyBehindLaggingReplica(t *testing.T) {
	ctx := context.Background()
	real := testKeys(t)
	k := &Keys{bucket: laggingReplica{real.bucket.(*store.Bucket)}, scope: real.scope}
	fp := []byte("request")
	if rec, err := k.Claim(ctx, "ada", "freed", fp); rec != nil || err != nil {
		t.Fatalf("Claim(new) = %+v, %v", rec, err)
	}
	if err := k.Release(ctx, "ada", "freed"); err != nil {
		t.Fatal(err)
	}
	if rec, err := k.Claim(ctx, "ada", "freed", fp); rec != nil || err != nil {
		t.Fatalf("Claim(freed, behind a lagging replica) = %+v, %v; want a new claim", rec, err)
	}
	if rec, err := k.Claim(ctx, "ada", "freed", fp); err != nil || rec == nil || rec.Done() {
		t.Fatalf("Claim(held) = %+v, %v; want the record without an answer", rec, err)
	}
	// Two claims of a freed key at once: one holds it, the other sees it
	// held.
	if err := k.Release(ctx, "ada", "freed"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rec *Record
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			rec, err := k.Claim(ctx, "ada", "freed", fp)
			results <- result{rec, err}
		}()
	}
	won := 0
	for range 2 {
		r := <-results
		switch {
		case r.err != nil:
			t.Errorf("concurrent claim: %v", r.err)
		case r.rec == nil:
			won++
		case r.rec.Done():
			t.Errorf("concurrent claim found an answer: %+v", r.rec)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent claims hold the key, want 1", won)
	}
}
