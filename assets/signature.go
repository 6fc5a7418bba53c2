package assets

import (
	"crypto/ecdsa"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Signature is a 65-byte Ethereum signature r || s || v with v 27 or 28,
// as eth_signTypedData_v4 returns it.
type Signature [65]byte

// ParseSignature reads "0x" followed by 130 hex digits. It accepts v of 27
// or 28 only, and refuses s in the upper half of the curve order, which
// would be a second, malleated encoding of the same signature.
func ParseSignature(s string) (Signature, error) {
	var sig Signature
	if len(s) != 2+2*65 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return sig, reject(ReasonSignatureEncoding, "a signature is 0x followed by 130 hex digits (65 bytes r||s||v), got %d characters", len(s))
	}
	if _, err := hex.Decode(sig[:], []byte(s[2:])); err != nil {
		return sig, reject(ReasonSignatureEncoding, "signature is not hex: %v", err)
	}
	if v := sig[64]; v != 27 && v != 28 {
		return sig, reject(ReasonSignatureEncoding, "recovery id v = %d, want 27 or 28", v)
	}
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(sig[64]-27, r, sv, true) {
		if r.Sign() > 0 && sv.Sign() > 0 && sv.Cmp(secp256k1HalfN) > 0 {
			return sig, reject(ReasonHighS, "s is in the upper half of the curve order (a malleable signature); sign again or use s' = n - s and flip v")
		}
		return sig, reject(ReasonSignatureEncoding, "r or s out of range")
	}
	return sig, nil
}

var secp256k1HalfN = new(big.Int).Rsh(crypto.S256().Params().N, 1)

// String is the 0x hex form.
func (s Signature) String() string { return "0x" + hex.EncodeToString(s[:]) }

// MarshalText writes the 0x hex form.
func (s Signature) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses with ParseSignature.
func (s *Signature) UnmarshalText(b []byte) error {
	sig, err := ParseSignature(string(b))
	if err != nil {
		return err
	}
	*s = sig
	return nil
}

// Recover returns the address that signed digest. sig must come from
// ParseSignature (or Sign), which already refused high-s values.
func Recover(digest common.Hash, sig Signature) (common.Address, error) {
	var raw [65]byte
	copy(raw[:], sig[:])
	raw[64] -= 27
	pub, err := crypto.Ecrecover(digest[:], raw[:])
	if err != nil {
		return common.Address{}, reject(ReasonSignatureEncoding, "no public key recovers from the signature: %v", err)
	}
	return common.BytesToAddress(crypto.Keccak256(pub[1:])[12:]), nil
}

// Sign signs digest with key, with v 27 or 28 and a low s (go-ethereum's
// signer always produces a low s).
func Sign(digest common.Hash, key *ecdsa.PrivateKey) (Signature, error) {
	raw, err := crypto.Sign(digest[:], key)
	if err != nil {
		return Signature{}, fmt.Errorf("assets: sign: %w", err)
	}
	var sig Signature
	copy(sig[:], raw)
	sig[64] += 27
	return sig, nil
}

// verifySigner checks that sig over digest is want's.
func verifySigner(digest common.Hash, sig Signature, want common.Address, what string) error {
	got, err := Recover(digest, sig)
	if err != nil {
		return err
	}
	if got != want {
		return reject(ReasonWrongSigner, "%s is signed by %s, not by %s (or it was signed for another domain or message)", what, got.Hex(), want.Hex())
	}
	return nil
}
