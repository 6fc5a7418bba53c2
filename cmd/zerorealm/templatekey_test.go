package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/keyfile"
)

// TestTemplateKeyCommands walks a rotation with `keys template`: add puts
// a new key below the sealing one, promote swaps them, retire drops the
// old one; each prints the keys' ids (never a key) and the next step,
// keeps the file private, and refuses a step out of order, with a reason
// and the file unchanged. show changes nothing.
func TestTemplateKeyCommands(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "template.key")
	first, err := keyfile.LoadRingOrCreate(file, "template key")
	if err != nil {
		t.Fatal(err)
	}
	keys := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		var out, errOut syncBuffer
		code = run(context.Background(), append([]string{"keys", "template"}, append(args, "--data", dir)...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	ring := func() [][]byte {
		t.Helper()
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := keyfile.ParseRing(raw, file)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
			t.Fatalf("the key file's mode is %v, want 0600", st.Mode().Perm())
		}
		return r
	}
	refused := func(step, want string) {
		t.Helper()
		before, _ := os.ReadFile(file)
		code, _, stderr := keys(step)
		after, _ := os.ReadFile(file)
		if code != exitUsage || !strings.Contains(stderr, want) || !bytes.Equal(before, after) {
			t.Fatalf("%s out of order: exit %d, %q, file changed %v; want exit %d naming %q, the file as it was",
				step, code, stderr, !bytes.Equal(before, after), exitUsage, want)
		}
	}

	refused("promote", "holds 1 keys")
	refused("retire", "nothing to retire")
	code, out, _ := keys("add")
	r := ring()
	if code != 0 || len(r) != 2 || !bytes.Equal(r[0], first[0]) || bytes.Equal(r[1], first[0]) {
		t.Fatalf("add: exit %d, a ring of %d keys (the sealing one kept first: %v)", code, len(r), len(r) > 0 && bytes.Equal(r[0], first[0]))
	}
	added := r[1]
	for _, k := range r {
		if !strings.Contains(out, keyfile.KeyID(k)) || strings.Contains(out, hex.EncodeToString(k)) {
			t.Fatalf("add printed %q: want each key's id and no key", out)
		}
	}
	if !strings.Contains(out, "promote") {
		t.Errorf("add printed %q: want the next step", out)
	}
	refused("add", "a rotation is under way")

	if code, _, _ := keys("promote"); code != 0 {
		t.Fatalf("promote: exit %d", code)
	}
	if r := ring(); len(r) != 2 || !bytes.Equal(r[0], added) || !bytes.Equal(r[1], first[0]) {
		t.Fatal("promote did not make the added key the sealing one, the old one below it")
	}
	before, _ := os.ReadFile(file)
	if code, out, _ := keys("show"); code != 0 || !strings.Contains(out, keyfile.KeyID(added)+"  seals and opens") {
		t.Fatalf("show: exit %d, %q", code, out)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatal("show changed the file")
	}
	if code, _, _ := keys("retire"); code != 0 {
		t.Fatalf("retire: exit %d", code)
	}
	if r := ring(); len(r) != 1 || !bytes.Equal(r[0], added) {
		t.Fatal("retire did not leave the new key alone")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left beside the key file: %v", leftovers)
	}
}
