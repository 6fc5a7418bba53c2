package assets

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
)

// TestKeyCreatedSurvivesACopy: a key's creation time, from which verifiers
// trust what it signed, comes from its file name, so copying the ring or
// restoring it from a backup (new modification times) does not move it.
func TestKeyCreatedSurvivesACopy(t *testing.T) {
	dir := t.TempDir()
	ring, err := OpenKeyRing(dir, "test passphrase", keystore.LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	first, err := ring.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(48 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, first.File), later, later); err != nil {
		t.Fatal(err)
	}
	keys, err := ring.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].Created.Equal(first.Created) || keys[0].Address != first.Address {
		t.Fatalf("List = %+v, want the key created at %v", keys, first.Created)
	}

	// A file not named by Rotate falls back to its modification time.
	if err := os.Rename(filepath.Join(dir, first.File), filepath.Join(dir, "renamed.json")); err != nil {
		t.Fatal(err)
	}
	keys, err = ring.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Created.Unix() != later.Unix() {
		t.Fatalf("List of a renamed key file = %+v, want its modification time %v", keys, later)
	}
}
