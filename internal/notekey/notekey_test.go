package notekey

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestSignedNoteOpensWithTheVerifierKeyOnly(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	s, vkey, err := Signer("realm.example/zerorealm/background/n1", seed)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil || n.Text != "hello\n" {
		t.Fatalf("Open = %v, %v", n, err)
	}
	// Another seed under the same name is another key.
	_, other, err := Keys("realm.example/zerorealm/background/n1", bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ov, err := note.NewVerifier(other)
	if err != nil {
		t.Fatal(err)
	}
	var unverified *note.UnverifiedNoteError
	if _, err := note.Open(msg, note.VerifierList(ov)); !errors.As(err, &unverified) {
		t.Errorf("opened with another key: %v", err)
	}
}

func TestKeysRefuseBadSeedsAndNames(t *testing.T) {
	if _, _, err := Keys("n", make([]byte, 31)); err == nil {
		t.Error("a 31-byte seed made a key")
	}
	if _, _, err := Keys("has space", make([]byte, 32)); err == nil {
		t.Error("a name with a space made a key")
	}
}
