package keyfile_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// checksBucket is a bucket for check values on an embedded server.
func checksBucket(t *testing.T) *store.Bucket {
	t.Helper()
	srv := natstest.RunServer(t)
	st, err := store.New(context.Background(), natstest.ConnectInProcess(t, srv), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Bucket(context.Background(), store.BucketConfig{Name: "key-checks"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheck checks that the first key's check value is recorded and that
// another key is refused.
func TestCheck(t *testing.T) {
	b := checksBucket(t)
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

// TestParseRing checks the ring format: one key a line, the first sealing,
// comments and blank lines skipped, and every malformed ring refused.
func TestParseRing(t *testing.T) {
	k1, k2 := strings.Repeat("11", keyfile.Size), strings.Repeat("22", keyfile.Size)
	ring, err := keyfile.ParseRing([]byte("# rotated on 2026-12-08\n"+k2+"\n\n  "+k1+"  \n"), "template.key")
	if err != nil || len(ring) != 2 || ring[0][0] != 0x22 || ring[1][0] != 0x11 {
		t.Fatalf("ParseRing = %x, %v; want the two keys, the first line's first", ring, err)
	}
	if ring, err := keyfile.ParseRing([]byte(k1+"\n"), "template.key"); err != nil || len(ring) != 1 {
		t.Fatalf("a file of one key = %d keys, %v; want a ring of one", len(ring), err)
	}
	for name, content := range map[string]string{
		"empty":         "",
		"only comments": "# nothing here\n\n",
		"a short line":  k1 + "\n" + k1[:62] + "\n",
		"not hex":       k1 + "\nzz" + k1[2:] + "\n",
		"a key twice":   k1 + "\n" + k2 + "\n" + k1 + "\n",
	} {
		if _, err := keyfile.ParseRing([]byte(content), "template.key"); !errors.Is(err, keyfile.ErrRingMalformed) {
			t.Errorf("%s: ParseRing gave %v; want ErrRingMalformed", name, err)
		}
	}
}

// TestCheckRing walks a rotation: the first ring is recorded; a ring that
// holds the cluster's key below a new first key rotates the cluster to the
// new key; from then on a ring that would seal under the retired key is
// refused, whether or not it holds the new one, and so is a ring of
// neither. A value Check recorded is a ring of one.
func TestCheckRing(t *testing.T) {
	b := checksBucket(t)
	ctx := context.Background()
	k1, k2, k3 := bytes.Repeat([]byte{1}, keyfile.Size), bytes.Repeat([]byte{2}, keyfile.Size), bytes.Repeat([]byte{3}, keyfile.Size)
	if err := keyfile.Check(ctx, b, "templates", k1, "test/v1"); err != nil {
		t.Fatalf("first check: %v", err)
	}
	steps := []struct {
		name        string
		ring        [][]byte
		wantRotated bool
		wantErr     error
	}{
		{"the recorded key, alone", [][]byte{k1}, false, nil},
		{"the recorded key, the new one known", [][]byte{k1, k2}, false, nil},
		{"a key the cluster never had", [][]byte{k3}, false, keyfile.ErrMismatch},
		{"the new key first", [][]byte{k2, k1}, true, nil},
		{"the new key first, again", [][]byte{k2, k1}, false, nil},
		{"the retired key first", [][]byte{k1, k2}, false, keyfile.ErrRetired},
		{"the retired key alone", [][]byte{k1}, false, keyfile.ErrRetired},
		{"the new key alone", [][]byte{k2}, false, nil},
		{"a third key first, the retired one below", [][]byte{k3, k1}, false, keyfile.ErrMismatch},
		{"a third key first, the current one below", [][]byte{k3, k2}, true, nil},
		{"the first key back first", [][]byte{k1, k3}, false, keyfile.ErrRetired},
	}
	for _, s := range steps {
		rotated, err := keyfile.CheckRing(ctx, b, "templates", s.ring, "test/v1")
		if rotated != s.wantRotated || !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: CheckRing = %v, %v; want %v, %v", s.name, rotated, err, s.wantRotated, s.wantErr)
		}
	}
	e, err := b.Get(ctx, "templates")
	if err != nil || len(e.Value) != 3*32 {
		t.Fatalf("the record holds %d bytes, %v; want three check values (current, then two retired)", len(e.Value), err)
	}
	for _, k := range [][]byte{k1, k2, k3} {
		if bytes.Contains(e.Value, k) {
			t.Fatal("the record holds a key")
		}
	}
	if rotated, err := keyfile.CheckRing(ctx, b, "fresh", [][]byte{k2, k1}, "test/v1"); rotated || err != nil {
		t.Fatalf("a ring checked first = %v, %v; want its first key recorded, no rotation", rotated, err)
	}
	if _, err := keyfile.CheckRing(ctx, b, "fresh", [][]byte{k1}, "test/v1"); !errors.Is(err, keyfile.ErrMismatch) {
		t.Fatalf("a fresh record's second key alone gave %v; want ErrMismatch (it never sealed)", err)
	}
}

// TestKeyFileOpenToEveryoneIsRefused: a key file other users may read or
// write is refused with what to do, and left as it is; one its group may
// read is taken.
func TestKeyFileOpenToEveryoneIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "template.key")
	key, err := keyfile.LoadRingOrCreate(file, "template key")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o602, 0o666} {
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
		_, err := keyfile.LoadRingOrCreate(file, "template key")
		if !errors.Is(err, keyfile.ErrNotPrivate) || !strings.Contains(err.Error(), "chmod 600 "+file) {
			t.Fatalf("a key file of mode %04o: %v; want ErrNotPrivate saying what to do", mode, err)
		}
		if _, err := keyfile.LoadOrCreate(file, "template key"); !errors.Is(err, keyfile.ErrNotPrivate) {
			t.Fatalf("LoadOrCreate of a key file of mode %04o: %v; want ErrNotPrivate", mode, err)
		}
		if st, _ := os.Stat(file); st.Mode().Perm() != mode {
			t.Fatalf("the refused file's mode changed to %04o", st.Mode().Perm())
		}
	}
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	if again, err := keyfile.LoadRingOrCreate(file, "template key"); err != nil || !bytes.Equal(again[0], key[0]) {
		t.Fatalf("a key file its group may read: %v", err)
	}
}
