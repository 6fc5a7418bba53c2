package agents

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// verifyKey is an Ed25519 public key with its point decoded once: a
// DPoP proof's key is the same on every request of an agent, and
// decoding it (a square root in the field) was about a tenth of each
// verification. verify is crypto/ed25519.Verify otherwise, step for
// step, over filippo.io/edwards25519 (the code the standard library's
// own Ed25519 is built from): the same length checks, the canonical-S
// check, the same cofactorless equation [S]B = R + [k]A, so it accepts
// exactly what ed25519.Verify accepts (TestVerifyKeyIsStdlib,
// FuzzVerifyKey).
type verifyKey struct {
	pub    ed25519.PublicKey
	minusA *edwards25519.Point // -A; nil: the key is no point, and verifies nothing
}

func newVerifyKey(pub ed25519.PublicKey) verifyKey {
	k := verifyKey{pub: pub}
	if len(pub) != ed25519.PublicKeySize {
		return k
	}
	if a, err := new(edwards25519.Point).SetBytes(pub); err == nil {
		k.minusA = a.Negate(a)
	}
	return k
}

// verify reports whether sig is k's signature of message.
func (k verifyKey) verify(message, sig []byte) bool {
	if k.minusA == nil || len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.pub)
	h.Write(message)
	var digest [sha512.Size]byte
	kScalar, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	// [S]B = R + [k]A  <=>  [k](-A) + [S]B = R
	r := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(kScalar, k.minusA, s)
	return bytes.Equal(sig[:32], r.Bytes())
}
