package ethsig

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Signature is r || s || v with v = 27 or 28.
type Signature [65]byte

var (
	// ErrEncoding: not 0x and 130 hex digits, v not 27 or 28, r or s out
	// of range, or no public key recovers from it.
	ErrEncoding = errors.New("ethsig: malformed signature")
	// ErrHighS: s is in the upper half of the curve order.
	ErrHighS = errors.New("ethsig: high-s signature")
)

var halfN = new(big.Int).Rsh(crypto.S256().Params().N, 1)

// Parse reads "0x" followed by 130 hex digits and checks the values.
func Parse(s string) (Signature, error) {
	var sig Signature
	if len(s) != 2+2*len(sig) || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return sig, fmt.Errorf("%w: a signature is 0x followed by 130 hex digits (65 bytes r||s||v), got %d characters", ErrEncoding, len(s))
	}
	if _, err := hex.Decode(sig[:], []byte(s[2:])); err != nil {
		return sig, fmt.Errorf("%w: not hex: %v", ErrEncoding, err)
	}
	return sig, sig.check()
}

// check validates v, r and s.
func (sig Signature) check() error {
	if v := sig[64]; v != 27 && v != 28 {
		return fmt.Errorf("%w: recovery id v = %d, want 27 or 28", ErrEncoding, v)
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if crypto.ValidateSignatureValues(sig[64]-27, r, s, true) {
		return nil
	}
	if r.Sign() > 0 && s.Sign() > 0 && s.Cmp(halfN) > 0 {
		return fmt.Errorf("%w: s is in the upper half of the curve order (a malleable signature); sign again or use s' = n - s and flip v", ErrHighS)
	}
	return fmt.Errorf("%w: r or s out of range", ErrEncoding)
}

// Recover returns the address that signed digest. It checks the values
// again, so a signature that did not come through Parse is held to the
// same rules.
func Recover(digest common.Hash, sig Signature) (common.Address, error) {
	if err := sig.check(); err != nil {
		return common.Address{}, err
	}
	raw := sig
	raw[64] -= 27
	pub, err := crypto.Ecrecover(digest[:], raw[:])
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: no public key recovers from it: %v", ErrEncoding, err)
	}
	return common.BytesToAddress(crypto.Keccak256(pub[1:])[12:]), nil
}

// Sign signs digest with key; go-ethereum's signer always produces a low s.
func Sign(digest common.Hash, key *ecdsa.PrivateKey) (Signature, error) {
	raw, err := crypto.Sign(digest[:], key)
	if err != nil {
		return Signature{}, fmt.Errorf("ethsig: sign: %w", err)
	}
	var sig Signature
	copy(sig[:], raw)
	sig[64] += 27
	return sig, nil
}

// String is the 0x hex form.
func (sig Signature) String() string { return "0x" + hex.EncodeToString(sig[:]) }

// Hex is the 0x hex form.
func (sig Signature) Hex() string { return sig.String() }

// MarshalText writes the 0x hex form.
func (sig Signature) MarshalText() ([]byte, error) { return []byte(sig.String()), nil }

// UnmarshalText parses with Parse.
func (sig *Signature) UnmarshalText(b []byte) error {
	parsed, err := Parse(string(b))
	if err != nil {
		return err
	}
	*sig = parsed
	return nil
}
