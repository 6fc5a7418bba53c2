package biometrics_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
)

func newStore(t testing.TB) *store.Store { return storetest.New(t, store.Config{}) }

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
		// The drift statistics are sealed and kept with the template.
		if tmpl.Drift == nil || !reflect.DeepEqual(got.Drift, tmpl.Drift) {
			t.Errorf("Get(%q) drift statistics = %+v, want the enrolled template's", id, got.Drift)
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
	// A store opened on this bucket with another key is refused, and a
	// value sealed under another realm's key does not open here.
	if _, err := biometrics.NewTemplateStore(ctx, st, testKey(2)); !errors.Is(err, biometrics.ErrKeyMismatch) {
		t.Errorf("NewTemplateStore with another key error = %v, want %v", err, biometrics.ErrKeyMismatch)
	}
	st2 := newStore(t)
	other, err := biometrics.NewTemplateStore(ctx, st2, testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Put(ctx, "bob", tmpl); err != nil {
		t.Fatal(err)
	}
	putRaw(t, st, "bob", rawValue(t, st2, "bob"))
	if _, err := ts.Get(ctx, "bob"); !errors.Is(err, biometrics.ErrSealed) {
		t.Errorf("Get of a value sealed under another key error = %v, want %v", err, biometrics.ErrSealed)
	}
	putRaw(t, st, "eve", raw)
	if _, err := ts.Get(ctx, "eve"); !errors.Is(err, biometrics.ErrSealed) {
		t.Errorf("Get of a value moved to another avatar error = %v, want %v", err, biometrics.ErrSealed)
	}
	if _, skipped, _ := ts.All(ctx); skipped != 2 {
		t.Errorf("All skipped %d, want 2 (the foreign and the moved value)", skipped)
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

// TestTemplateStoreChanges: every write and delete of a template is
// reported with its avatar, and the key check value never is.
func TestTemplateStoreChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := newStore(t)
	ts, err := biometrics.NewTemplateStore(ctx, st, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := ts.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A second store with the same key opens the bucket again (it must not
	// rewrite the check value into a change).
	if _, err := biometrics.NewTemplateStore(ctx, st, testKey(1)); err != nil {
		t.Fatalf("NewTemplateStore with the same key again: %v", err)
	}
	tmpl := enrolledTemplate(t, 7)
	if err := ts.Put(ctx, "avatar with spaces/and.dots", tmpl); err != nil {
		t.Fatal(err)
	}
	if err := ts.Delete(ctx, "avatar with spaces/and.dots"); err != nil {
		t.Fatal(err)
	}
	// The bucket keeps one revision per key, so a write deleted before
	// the feed reached it is gone from the stream and only its delete is
	// reported; what must never be missed is the key's last change.
	for i := 0; ; i++ {
		select {
		case c := <-changes:
			if c.AvatarID != "avatar with spaces/and.dots" || c.Lost || c.Resumed || (i > 0 && !c.Deleted) {
				t.Fatalf("change %d = %+v, want the avatar's write (unless superseded), then its delete", i, c)
			}
			if c.Deleted {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the delete was not reported (%d changes before)", i)
		}
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

// TestTemplateStoreMarksOwnWrites: a node reads back only what other
// nodes wrote. Two stores on one bucket are two nodes: the first one's
// feed marks its own writes Own, every time, and the other node's write of
// the same avatar and every delete not.
func TestTemplateStoreMarksOwnWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := newStore(t)
	a, err := biometrics.NewTemplateStore(ctx, st, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := biometrics.NewTemplateStore(ctx, st, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := a.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := enrolledTemplate(t, 7)
	steps := []struct {
		name      string
		do        func() error
		own, gone bool
	}{
		{"a puts", func() error { return a.Put(ctx, "ada", tmpl) }, true, false},
		{"a puts again", func() error { return a.Put(ctx, "ada", tmpl) }, true, false},
		{"b puts", func() error { return b.Put(ctx, "ada", tmpl) }, false, false},
		{"a puts after b", func() error { return a.Put(ctx, "ada", tmpl) }, true, false},
		{"a deletes", func() error { return a.Delete(ctx, "ada") }, false, true},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		select {
		case c := <-changes:
			if c.AvatarID != "ada" || c.Own != s.own || c.Deleted != s.gone {
				t.Errorf("%s: change = %+v, want Own %v, Deleted %v", s.name, c, s.own, s.gone)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no change reported", s.name)
		}
	}
}

// TestPutUnlessDeletedSince: a template is stored over nothing, over a
// live template and over a deletion made before what it was collected
// under, and never over a deletion made after it: that template is void.
func TestPutUnlessDeletedSince(t *testing.T) {
	ctx := context.Background()
	ts, err := biometrics.NewTemplateStore(ctx, newStore(t), testKey(3))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := enrolledTemplate(t, 11)
	stored := func(what string) {
		t.Helper()
		if _, err := ts.Get(ctx, "ada"); err != nil {
			t.Fatalf("%s: not stored: %v", what, err)
		}
	}
	if err := ts.PutUnlessDeletedSince(ctx, "ada", tmpl, time.Now()); err != nil {
		t.Fatal(err)
	}
	stored("over nothing")
	if err := ts.PutUnlessDeletedSince(ctx, "ada", tmpl, time.Now()); err != nil {
		t.Fatal(err)
	}
	stored("over a live template")

	consent := time.Now()
	time.Sleep(10 * time.Millisecond)
	if err := ts.Delete(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := ts.PutUnlessDeletedSince(ctx, "ada", tmpl, consent); !errors.Is(err, biometrics.ErrTemplateVoid) {
		t.Fatalf("a template collected before the deletion: %v, want ErrTemplateVoid", err)
	}
	if _, err := ts.Get(ctx, "ada"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a void template was stored: %v", err)
	}
	if err := ts.PutUnlessDeletedSince(ctx, "ada", tmpl, time.Now()); err != nil {
		t.Fatal(err)
	}
	stored("over a deletion before its consent")
}
