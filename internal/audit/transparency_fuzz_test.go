package audit

import (
	"crypto/rand"
	"encoding/json"
	"testing"
)

// fuzzKey is one key for the fuzz seeds, so signed seeds verify.
func fuzzKey(f *testing.F) *Key {
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	k, err := NewKey(Origin(testRealm, "a"), seed)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// FuzzOpenCheckpoint feeds OpenCheckpoint signed notes as read from the
// store or a client's file: anything but a checkpoint signed by the key
// is an error, never a panic, and what opens re-opens the same.
func FuzzOpenCheckpoint(f *testing.F) {
	k := fuzzKey(f)
	t := &merkleTree{}
	for _, leaf := range []string{"a", "b", "c"} {
		_ = t.append([]byte(leaf))
	}
	root, _ := t.root(3)
	c, err := k.sign(3, root, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Note, k.VerifierKey())
	f.Add([]byte("realm.test/zerorealm/audit/a\n3\nAAAA\n\n— x y\n"), k.VerifierKey())
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, msg []byte, vkey string) {
		c, err := OpenCheckpoint(msg, vkey)
		if err != nil {
			return
		}
		again, err := OpenCheckpoint(c.Note, c.Key)
		if err != nil || again.Size != c.Size || again.Root != c.Root || again.Node != c.Node {
			t.Fatalf("re-opening %q: %+v, %v", msg, again, err)
		}
		if !ValidNode(c.Node) {
			t.Fatalf("opened a checkpoint of node %q", c.Node)
		}
	})
}

// FuzzParseStoredCheckpoint feeds the parsers of what AUDITCP and a data
// directory hold: published checkpoints, anchors and cosignatures.
func FuzzParseStoredCheckpoint(f *testing.F) {
	k := fuzzKey(f)
	t := &merkleTree{}
	_ = t.append([]byte("a"))
	root, _ := t.root(1)
	c, err := k.sign(1, root, nil)
	if err != nil {
		f.Fatal(err)
	}
	anchor, _ := json.Marshal(anchorOf(c))
	pub, _ := json.Marshal(published{Checkpoint: string(c.Note), Key: c.Key, From: 1})
	f.Add(anchor)
	f.Add(pub)
	f.Add([]byte(`{"proof":["AAAA"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := parseAnchor(data); err == nil {
			if _, err := a.open(); err != nil {
				t.Fatalf("a parsed anchor does not open: %v", err)
			}
		}
		if p, err := parsePublished(data); err == nil && len(p.Proof) > 128 {
			t.Fatalf("published checkpoint with %d proof hashes accepted", len(p.Proof))
		}
		_ = Cosigners(data, []string{k.VerifierKey()})
	})
}
