package assets

import (
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/ethsig"
)

// Signature is a 65-byte Ethereum signature r || s || v with v 27 or 28,
// as eth_signTypedData_v4 returns it.
type Signature = ethsig.Signature

// ParseSignature reads "0x" followed by 130 hex digits. It accepts v of 27
// or 28 only, and refuses s in the upper half of the curve order, which
// would be a second, malleated encoding of the same signature.
func ParseSignature(s string) (Signature, error) {
	sig, err := ethsig.Parse(s)
	return sig, signatureReject(err)
}

// Recover returns the address that signed digest.
func Recover(digest common.Hash, sig Signature) (common.Address, error) {
	addr, err := ethsig.Recover(digest, sig)
	return addr, signatureReject(err)
}

// Sign signs digest with key, with v 27 or 28 and a low s.
func Sign(digest common.Hash, key *ecdsa.PrivateKey) (Signature, error) {
	sig, err := ethsig.Sign(digest, key)
	if err != nil {
		return Signature{}, fmt.Errorf("assets: %w", err)
	}
	return sig, nil
}

// signatureReject gives a signature refusal its reason.
func signatureReject(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ethsig.ErrHighS):
		return reject(ReasonHighS, "%v", err)
	default:
		return reject(ReasonSignatureEncoding, "%v", err)
	}
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
