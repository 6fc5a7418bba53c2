package twin

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/internal/ethsig"
)

// Signer holds a secp256k1 key: the realm's, which signs grants and
// revocation notices, or a gateway's, which signs acknowledgements and
// telemetry.
type Signer struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

// NewSigner wraps a secp256k1 private key.
func NewSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	if key == nil || key.Curve != crypto.S256() {
		return nil, errors.New("twin: signer needs a secp256k1 private key")
	}
	return &Signer{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}, nil
}

// GenerateSigner makes a signer with a fresh random key.
func GenerateSigner() (*Signer, error) {
	k, err := crypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("twin: generate key: %w", err)
	}
	return NewSigner(k)
}

// Address is the signer's Ethereum address, the identity verifiers pin.
func (s *Signer) Address() common.Address { return s.addr }

// HexKey is the private key as hex, for a credentials file.
func (s *Signer) HexKey() string { return hex.EncodeToString(crypto.FromECDSA(s.key)) }

// SignerFromHex reads a private key written by HexKey.
func SignerFromHex(h string) (*Signer, error) {
	k, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(h), "0x"))
	if err != nil {
		return nil, fmt.Errorf("twin: private key: %w", err)
	}
	return NewSigner(k)
}

// Signature is 65 bytes r || s || v with v = 27 or 28, as Ethereum tooling
// writes it.
type Signature = ethsig.Signature

func (s *Signer) sign(digest common.Hash) Signature {
	sig, err := ethsig.Sign(digest, s.key)
	if err != nil {
		// Only a digest of the wrong length or a broken key fails; both are
		// impossible here.
		panic("twin: sign: " + err.Error())
	}
	return sig
}

// recoverSigner returns the address that signed digest, refusing malleable
// (high-s) signatures and any v other than 27 or 28.
func recoverSigner(digest common.Hash, sig Signature) (common.Address, error) {
	addr, err := ethsig.Recover(digest, sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrInvalidGrant, err)
	}
	return addr, nil
}

// ParseSignature reads 0x and 130 hex digits.
func ParseSignature(h string) (Signature, error) {
	var sig Signature
	raw, ok := strings.CutPrefix(h, "0x")
	if !ok || len(raw) != 130 {
		return sig, fmt.Errorf("%w: signature must be 0x and 130 hex digits", ErrInvalidGrant)
	}
	if _, err := hex.Decode(sig[:], []byte(raw)); err != nil {
		return sig, fmt.Errorf("%w: signature: %v", ErrInvalidGrant, err)
	}
	return sig, nil
}

// LoadOrCreateKeyFile reads a secp256k1 key from an Ethereum keystore (v3)
// file, or creates one at path when there is none. The passphrase may be
// empty; the file is then protected only by its permissions (0600).
func LoadOrCreateKeyFile(path, passphrase string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		k, err := decryptKeystore(data, passphrase)
		if err != nil {
			return nil, fmt.Errorf("twin: key file %s: %w", path, err)
		}
		return NewSigner(k)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("twin: read key file: %w", err)
	}
	s, err := GenerateSigner()
	if err != nil {
		return nil, err
	}
	enc, err := encryptKeystore(s, passphrase)
	if err != nil {
		return nil, fmt.Errorf("twin: encrypt key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("twin: key dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, enc, 0o600); err != nil {
		return nil, fmt.Errorf("twin: write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("twin: write key file: %w", err)
	}
	return s, nil
}
