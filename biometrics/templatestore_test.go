package biometrics_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	st, err := store.New(context.Background(), nc, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testKey(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestTemplateStore(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	ts, err := biometrics.NewTemplateStore(ctx, st, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := enrolledTemplate(t, 7)

	if _, err := ts.Get(ctx, "ada"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) before Put error = %v, want %v", "ada", err, store.ErrNotFound)
	}
	for _, id := range []string{"ada", "avatar with spaces/and.dots"} {
		if err := ts.Put(ctx, id, tmpl); err != nil {
			t.Fatalf("Put(%q): %v", id, err)
		}
		got, err := ts.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		if !reflect.DeepEqual(got.Mean, tmpl.Mean) || got.Windows != tmpl.Windows || !got.Created.Equal(tmpl.Created) {
			t.Errorf("Get(%q) = a different template than Put", id)
		}
	}
	all, skipped, err := ts.All(ctx)
	if err != nil || skipped != 0 || len(all) != 2 {
		t.Fatalf("All = %d templates, %d skipped, %v; want 2, 0, nil", len(all), skipped, err)
	}

	// The stored value is sealed: no plaintext feature bytes, and it opens
	// neither under another key nor under another avatar's id.
	plain, _ := tmpl.MarshalBinary()
	raw := rawValue(t, st, "ada")
	if bytesContain(raw, plain[30:60]) {
		t.Error("stored template contains plaintext")
	}
	other, err := biometrics.NewTemplateStore(ctx, st, testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(ctx, "ada"); !errors.Is(err, biometrics.ErrSealed) {
		t.Errorf("Get under another key error = %v, want %v", err, biometrics.ErrSealed)
	}
	putRaw(t, st, "eve", raw)
	if _, err := ts.Get(ctx, "eve"); !errors.Is(err, biometrics.ErrSealed) {
		t.Errorf("Get of a value moved to another avatar error = %v, want %v", err, biometrics.ErrSealed)
	}
	if _, skipped, _ := ts.All(ctx); skipped != 1 {
		t.Errorf("All skipped %d, want 1 (the moved value)", skipped)
	}

	if err := ts.Delete(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Get(ctx, "ada"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want %v", err, store.ErrNotFound)
	}
	if err := ts.Delete(ctx, "nobody"); err != nil {
		t.Errorf("Delete(nobody) = %v, want nil", err)
	}
}

func TestTemplateStoreKey(t *testing.T) {
	st := newStore(t)
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := biometrics.NewTemplateStore(context.Background(), st, make([]byte, n)); !errors.Is(err, biometrics.ErrTemplateKey) {
			t.Errorf("NewTemplateStore(%d-byte key) error = %v, want %v", n, err, biometrics.ErrTemplateKey)
		}
	}
}

func rawValue(t *testing.T, st *store.Store, avatarID string) []byte {
	t.Helper()
	b, err := st.Bucket(context.Background(), store.BucketConfig{Name: biometrics.TemplateBucket, MaxValueSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	e, err := b.Get(context.Background(), keyFor(avatarID))
	if err != nil {
		t.Fatal(err)
	}
	return e.Value
}

func putRaw(t *testing.T, st *store.Store, avatarID string, v []byte) {
	t.Helper()
	b, err := st.Bucket(context.Background(), store.BucketConfig{Name: biometrics.TemplateBucket, MaxValueSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(context.Background(), keyFor(avatarID), v); err != nil {
		t.Fatal(err)
	}
}

func bytesContain(haystack, needle []byte) bool {
	for i := 0; i+len(needle) <= len(haystack); i++ {
		if string(haystack[i:i+len(needle)]) == string(needle) {
			return true
		}
	}
	return false
}

var _ = time.Second
