package notekey

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Keys returns the note signer key and verifier key named name for an
// Ed25519 seed. A signer key is the verifier key's name and hash with the
// private seed in place of the public key, as the note package reads it.
func Keys(name string, seed []byte) (skey, vkey string, err error) {
	if len(seed) != ed25519.SeedSize {
		return "", "", fmt.Errorf("notekey: seed has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	vkey, err = note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", "", fmt.Errorf("notekey: %w", err)
	}
	// The verifier key's maker does not check the name; the reader does.
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", "", fmt.Errorf("notekey: name %q: %w", name, err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	skey = "PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, seed...))
	return skey, vkey, nil
}

// Signer is the note signer named name for an Ed25519 seed, with its
// verifier key.
func Signer(name string, seed []byte) (note.Signer, string, error) {
	skey, vkey, err := Keys(name, seed)
	if err != nil {
		return nil, "", err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("notekey: %w", err)
	}
	return s, vkey, nil
}
