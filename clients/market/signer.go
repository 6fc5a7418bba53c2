package market

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// Signer signs EIP-712 digests for one address. The client hashes the
// typed data itself (go-ethereum's EIP-712 code) and asks the Signer only
// for a signature of the 32-byte digest, so anything that can sign a hash
// with a secp256k1 key fits: a raw key (KeySigner), an encrypted
// keystore, a hardware wallet, a remote signing service (SignerFunc).
type Signer interface {
	// Address is the address whose key signs.
	Address() common.Address
	// SignDigest returns the 65-byte signature r || s || v of digest, v 0
	// or 1 (as go-ethereum's crypto.Sign) or 27 or 28 (as wallets).
	SignDigest(ctx context.Context, digest common.Hash) ([]byte, error)
}

// ErrBadSignature reports a signature a Signer returned that is not one
// the realm accepts for its address: the wrong length, a high s, or the
// key of another address. Nothing is sent to the realm with it.
var ErrBadSignature = errors.New("market: the signer's signature does not verify")

// SignerFunc makes a Signer of an address and a function that signs
// digests for it: the shape of a remote signer or a hardware wallet.
func SignerFunc(address common.Address, sign func(ctx context.Context, digest common.Hash) ([]byte, error)) Signer {
	return funcSigner{address: address, sign: sign}
}

type funcSigner struct {
	address common.Address
	sign    func(context.Context, common.Hash) ([]byte, error)
}

func (f funcSigner) Address() common.Address { return f.address }

func (f funcSigner) SignDigest(ctx context.Context, digest common.Hash) ([]byte, error) {
	return f.sign(ctx, digest)
}

// KeySigner is the Signer of a raw private key held in memory: the
// convenience for tests, scripts and services that keep their key
// themselves.
func KeySigner(key *ecdsa.PrivateKey) Signer {
	return SignerFunc(crypto.PubkeyToAddress(key.PublicKey), func(_ context.Context, digest common.Hash) ([]byte, error) {
		return crypto.Sign(digest[:], key)
	})
}

// signDigest has signer sign digest and checks the answer before anyone
// relies on it: 65 bytes, low s, and recovering to the signer's address.
// It returns the signature as the wire wants it: 0x hex, v 27 or 28.
func signDigest(ctx context.Context, signer Signer, digest common.Hash) (string, error) {
	sig, err := signer.SignDigest(ctx, digest)
	if err != nil {
		return "", fmt.Errorf("market: sign %s: %w", digest.Hex(), err)
	}
	if len(sig) != crypto.SignatureLength {
		return "", fmt.Errorf("%w: %d bytes, want %d", ErrBadSignature, len(sig), crypto.SignatureLength)
	}
	sig = append([]byte(nil), sig...)
	if sig[64] >= 27 {
		sig[64] -= 27
	}
	if sig[64] > 1 || !crypto.ValidateSignatureValues(sig[64], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64]), true) {
		return "", fmt.Errorf("%w: v, r or s out of range, or a high s (malleable)", ErrBadSignature)
	}
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if got := crypto.PubkeyToAddress(*pub); got != signer.Address() {
		return "", fmt.Errorf("%w: it is %s's, not %s's", ErrBadSignature, got.Hex(), signer.Address().Hex())
	}
	sig[64] += 27
	return "0x" + common.Bytes2Hex(sig), nil
}

// HashTypedData is the EIP-712 digest of eth_signTypedData_v4 JSON, by
// go-ethereum's own EIP-712 code rather than the realm's.
func HashTypedData(typedData json.RawMessage) (common.Hash, error) {
	var td apitypes.TypedData
	if err := json.Unmarshal(typedData, &td); err != nil {
		return common.Hash{}, fmt.Errorf("market: typed data: %w", err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return common.Hash{}, fmt.Errorf("market: typed data: %w", err)
	}
	return common.BytesToHash(h), nil
}

// SignTypedData hashes eth_signTypedData_v4 JSON and has signer sign the
// digest: what a wallet does. It returns the 65-byte signature (v 27 or
// 28) and the digest, both 0x hex.
func SignTypedData(ctx context.Context, signer Signer, typedData json.RawMessage) (signature, digest string, err error) {
	h, err := HashTypedData(typedData)
	if err != nil {
		return "", "", err
	}
	sig, err := signDigest(ctx, signer, h)
	return sig, h.Hex(), err
}

// SignPayload signs a payload the realm sent, after checking that the
// realm's digest is the one the typed data hashes to: a realm cannot have
// a signer sign something other than what it shows.
func SignPayload(ctx context.Context, signer Signer, p Payload) (string, error) {
	h, err := HashTypedData(p.TypedData)
	if err != nil {
		return "", err
	}
	if !strings.EqualFold(h.Hex(), p.Digest) {
		return "", fmt.Errorf("market: the realm's digest %s is not the typed data's %s", p.Digest, h.Hex())
	}
	return signDigest(ctx, signer, h)
}
