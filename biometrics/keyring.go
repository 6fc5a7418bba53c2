package biometrics

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
)

// sealRing is the AEADs of a template key ring: the first seals and opens,
// the others, the keys a rotation retired, only open what was sealed under
// them before it. Each is the key itself (label "") or a key derived from
// it under label, so that every use of the template key (templates,
// enrollments set aside, replay path cells) rotates with it.
type sealRing []cipher.AEAD

// newSealRing makes the ring's AEADs from key and the retired keys, all
// 32 bytes.
func newSealRing(label string, key []byte, retired [][]byte) (sealRing, error) {
	ring := make(sealRing, 0, 1+len(retired))
	for _, k := range append([][]byte{key}, retired...) {
		if len(k) != 32 {
			return nil, ErrTemplateKey
		}
		if label != "" {
			var err error
			if k, err = hkdf.Key(sha256.New, k, nil, label, 32); err != nil {
				return nil, err
			}
		}
		aead, err := newGCM(k)
		if err != nil {
			return nil, err
		}
		ring = append(ring, aead)
	}
	return ring, nil
}

// sealer is the AEAD new values are sealed under.
func (r sealRing) sealer() cipher.AEAD { return r[0] }

// errNotOpened: no key of the ring opens the value.
var errNotOpened = errors.New("biometrics: no key of the ring opens it")

// open opens ciphertext under the first key of the ring that
// authenticates it; retired reports that it was not the sealing key, so
// that the value can be sealed again under the new one. A failed GCM open
// costs one tag computation, so trying a retired key or two after the
// sealing one is cheap.
func (r sealRing) open(nonce, ciphertext, ad []byte) (plain []byte, retired bool, err error) {
	for i, aead := range r {
		if plain, err := aead.Open(nil, nonce, ciphertext, ad); err == nil {
			return plain, i > 0, nil
		}
	}
	return nil, false, errNotOpened
}
