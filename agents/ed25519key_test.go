package agents

import (
	"crypto/ed25519"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// edgeKeys are public keys that decode oddly: the identity, a point of
// small order, a y of p or more (a non-canonical encoding, which both
// accept), and a y that is no point.
var edgeKeys = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0200000000000000000000000000000000000000000000000000000000000000",
}

// verifyKey accepts exactly what crypto/ed25519.Verify accepts: valid
// signatures, and none of the signatures a bit flip, a non-canonical S,
// the top bits of S, another message or another key make; and keys that
// are no point, or odd points, alike.
func TestVerifyKeyIsStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(pub ed25519.PublicKey, msg, sig []byte) {
		t.Helper()
		want := ed25519.Verify(pub, msg, sig)
		if got := newVerifyKey(pub).verify(msg, sig); got != want {
			t.Fatalf("verify(pub %x, msg %x, sig %x) = %v, ed25519.Verify %v", pub, msg, sig, got, want)
		}
	}
	accepted := 0
	for i := range 200 {
		var seed [32]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		msg := make([]byte, i)
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		if newVerifyKey(pub).verify(msg, sig) {
			accepted++
		}
		check(pub, msg, sig)
		flipped := append([]byte(nil), sig...)
		flipped[rng.IntN(64)] ^= 1 << rng.IntN(8)
		check(pub, msg, flipped)
		high := append([]byte(nil), sig...)
		high[63] |= 0x20 << rng.IntN(3)
		check(pub, msg, high)
		check(pub, append(msg, 0), sig)
		check(pub, msg, sig[:63])
		check(pub, msg, append(sig, 0))
		// S + l: the same scalar, not canonical; refused by both.
		check(pub, msg, addOrder(sig))
		other := append([]byte(nil), pub...)
		other[rng.IntN(32)] ^= 1 << rng.IntN(8)
		check(other, msg, sig)
	}
	if accepted != 200 {
		t.Fatalf("%d of 200 valid signatures verified", accepted)
	}
	for _, h := range edgeKeys {
		pub, _ := hex.DecodeString(h)
		for range 20 {
			sig := make([]byte, 64)
			for j := range sig {
				sig[j] = byte(rng.Uint32())
			}
			sig[63] &= 0x0f
			check(pub, []byte("m"), sig)
		}
		// R = the identity, S = 0: a signature that a small-order key
		// can satisfy; both answer alike.
		zero := make([]byte, 64)
		zero[0] = 1
		check(pub, []byte("m"), zero)
	}
	if newVerifyKey(make([]byte, 31)).verify([]byte("m"), make([]byte, 64)) {
		t.Fatal("a key of 31 bytes verified")
	}
}

// addOrder is sig with S + l, the group's order, when that fits in 32
// bytes (S < 2^253 - l).
func addOrder(sig []byte) []byte {
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	out := append([]byte(nil), sig...)
	carry := 0
	for i := range 32 {
		v := int(out[32+i]) + int(l[i]) + carry
		out[32+i], carry = byte(v), v>>8
	}
	return out
}

// FuzzVerifyKey: on any key, message and signature, verifyKey answers as
// crypto/ed25519.Verify.
func FuzzVerifyKey(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	msg := []byte("eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJ4In0")
	sig := ed25519.Sign(priv, msg)
	f.Add([]byte(priv.Public().(ed25519.PublicKey)), msg, sig)
	f.Add([]byte(priv.Public().(ed25519.PublicKey)), msg, addOrder(sig))
	for _, h := range edgeKeys {
		pub, _ := hex.DecodeString(h)
		f.Add(pub, msg, sig)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return // ed25519.Verify panics; a proof's header never gives one
		}
		want := ed25519.Verify(pub, msg, sig)
		if got := newVerifyKey(pub).verify(msg, sig); got != want {
			t.Fatalf("verify(pub %x, msg %x, sig %x) = %v, ed25519.Verify %v", pub, msg, sig, got, want)
		}
	})
}
