package keyfile_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

// TestLoadOrCreate checks the key is created once, private, and reused,
// and that a corrupt file is refused rather than replaced.
func TestLoadOrCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "record.key")
	k1, err := keyfile.LoadOrCreate(file, "record key")
	if err != nil || len(k1) != keyfile.Size {
		t.Fatalf("LoadOrCreate = %d bytes, %v; want %d", len(k1), err, keyfile.Size)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	k2, err := keyfile.LoadOrCreate(file, "record key")
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load = %x, %v; want the same key", k2, err)
	}
	if err := os.WriteFile(file, []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keyfile.LoadOrCreate(file, "record key"); !errors.Is(err, keyfile.ErrMalformed) {
		t.Fatalf("a corrupt key file gave %v; want ErrMalformed", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "not hex\n" {
		t.Fatal("a corrupt key file was overwritten")
	}
}

// TestCheck checks that the first key's check value is recorded and that
// another key is refused.
func TestCheck(t *testing.T) {
	srv := natstest.RunServer(t)
	st, err := store.New(context.Background(), natstest.ConnectInProcess(t, srv), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Bucket(context.Background(), store.BucketConfig{Name: "key-checks"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k1, k2 := bytes.Repeat([]byte{1}, keyfile.Size), bytes.Repeat([]byte{2}, keyfile.Size)
	if err := keyfile.Check(ctx, b, "record", k1, "test/v1"); err != nil {
		t.Fatalf("first check: %v", err)
	}
	if err := keyfile.Check(ctx, b, "record", k1, "test/v1"); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	if err := keyfile.Check(ctx, b, "record", k2, "test/v1"); !errors.Is(err, keyfile.ErrMismatch) {
		t.Fatalf("another key gave %v; want ErrMismatch", err)
	}
	e, err := b.Get(ctx, "record")
	if err != nil || bytes.Contains(e.Value, k1) {
		t.Fatalf("check value %x, %v: must exist and not hold the key", e.Value, err)
	}
}
