package twin

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/google/uuid"
)

// The key file is an Ethereum keystore v3 (Web3 Secret Storage) document,
// written and read by go-ethereum's keystore, so any Ethereum wallet can
// import it.

// Scrypt cost of new key files: the "light" parameters of go-ethereum
// (N = 4096, p = 6), so that a realm starts in well under a second. The
// file's permissions are its main protection; a passphrase adds to them.
const (
	keystoreScryptN = keystore.LightScryptN
	keystoreScryptP = keystore.LightScryptP
	// maxKeystoreScryptN bounds the work a key file can ask for before
	// it is decrypted: a file edited to demand N = 2^30 would otherwise
	// hold the start-up for minutes and gigabytes. go-ethereum's own
	// standard cost, 2^18, is well within it.
	maxKeystoreScryptN = 1 << 20
)

func encryptKeystore(s *Signer, passphrase string) ([]byte, error) {
	key := &keystore.Key{Id: uuid.New(), Address: s.addr, PrivateKey: s.key}
	return keystore.EncryptKey(key, passphrase, keystoreScryptN, keystoreScryptP)
}

// errWrongPassphrase is what a MAC mismatch means in practice.
var errWrongPassphrase = errors.New("could not decrypt the key with the given passphrase")

func decryptKeystore(data []byte, passphrase string) (*ecdsa.PrivateKey, error) {
	var head struct {
		Crypto struct {
			KDFParams struct {
				N int `json:"n"`
			} `json:"kdfparams"`
		} `json:"crypto"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a keystore file: %w", err)
	}
	if head.Crypto.KDFParams.N > maxKeystoreScryptN {
		return nil, fmt.Errorf("keystore scrypt cost N = %d is over the %d this realm opens", head.Crypto.KDFParams.N, maxKeystoreScryptN)
	}
	key, err := keystore.DecryptKey(data, passphrase)
	switch {
	case errors.Is(err, keystore.ErrDecrypt):
		return nil, errWrongPassphrase
	case err != nil:
		return nil, err
	}
	return key.PrivateKey, nil
}
