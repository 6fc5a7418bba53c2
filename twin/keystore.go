package twin

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/crypto/scrypt"
)

// The key file is an Ethereum keystore v3 (Web3 Secret Storage) document,
// written here rather than with go-ethereum's keystore package, which
// would pull a file watcher and more into the binary for two functions.
// Any Ethereum wallet can import it.

// Scrypt cost of new key files: the "light" parameters of go-ethereum
// (N = 4096, p = 6), so that a realm starts in well under a second. The
// file's permissions are its main protection; a passphrase adds to them.
const (
	keystoreScryptN = 1 << 12
	keystoreScryptR = 8
	keystoreScryptP = 6
	keystoreDKLen   = 32
)

type keystoreFile struct {
	Address string         `json:"address"`
	Crypto  keystoreCrypto `json:"crypto"`
	ID      string         `json:"id"`
	Version int            `json:"version"`
}

type keystoreCrypto struct {
	Cipher       string                 `json:"cipher"`
	CipherText   string                 `json:"ciphertext"`
	CipherParams keystoreIV             `json:"cipherparams"`
	KDF          string                 `json:"kdf"`
	KDFParams    map[string]interface{} `json:"kdfparams"`
	MAC          string                 `json:"mac"`
}

func encryptKeystore(s *Signer, passphrase string) ([]byte, error) {
	salt := make([]byte, 32)
	iv := make([]byte, aes.BlockSize)
	id := make([]byte, 16)
	for _, b := range [][]byte{salt, iv, id} {
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	derived, err := scrypt.Key([]byte(passphrase), salt, keystoreScryptN, keystoreScryptR, keystoreScryptP, keystoreDKLen)
	if err != nil {
		return nil, err
	}
	plain := crypto.FromECDSA(s.key)
	ct, err := aesCTR(derived[:16], iv, plain)
	if err != nil {
		return nil, err
	}
	mac := crypto.Keccak256(derived[16:32], ct)
	id[6] = id[6]&0x0f | 0x40 // a version 4 UUID
	id[8] = id[8]&0x3f | 0x80
	f := keystoreFile{
		Address: strings.ToLower(strings.TrimPrefix(s.addr.Hex(), "0x")),
		ID:      fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:]),
		Version: 3,
		Crypto: keystoreCrypto{
			Cipher: "aes-128-ctr", CipherText: hex.EncodeToString(ct), KDF: "scrypt", MAC: hex.EncodeToString(mac),
			KDFParams: map[string]interface{}{"n": keystoreScryptN, "r": keystoreScryptR, "p": keystoreScryptP, "dklen": keystoreDKLen, "salt": hex.EncodeToString(salt)},
		},
	}
	f.Crypto.CipherParams.IV = hex.EncodeToString(iv)
	return json.MarshalIndent(f, "", "  ")
}

// errWrongPassphrase is what a MAC mismatch means in practice.
var errWrongPassphrase = errors.New("could not decrypt the key with the given passphrase")

func decryptKeystore(data []byte, passphrase string) (*ecdsa.PrivateKey, error) {
	var f keystoreFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a keystore file: %w", err)
	}
	c := f.Crypto
	if f.Version != 3 || c.Cipher != "aes-128-ctr" || c.KDF != "scrypt" {
		return nil, fmt.Errorf("unsupported keystore (version %d, cipher %q, kdf %q): want v3, aes-128-ctr, scrypt", f.Version, c.Cipher, c.KDF)
	}
	num := func(k string) int {
		v, _ := c.KDFParams[k].(float64)
		return int(v)
	}
	n, r, p, dklen := num("n"), num("r"), num("p"), num("dklen")
	if n <= 1 || n > 1<<20 || r <= 0 || r > 32 || p <= 0 || p > 16 || dklen != 32 {
		return nil, errors.New("keystore scrypt parameters out of range")
	}
	saltHex, _ := c.KDFParams["salt"].(string)
	salt, err1 := hex.DecodeString(saltHex)
	iv, err2 := hex.DecodeString(c.CipherParams.IV)
	ct, err3 := hex.DecodeString(c.CipherText)
	mac, err4 := hex.DecodeString(c.MAC)
	if err := errors.Join(err1, err2, err3, err4); err != nil || len(iv) != aes.BlockSize {
		return nil, errors.New("keystore fields are not valid hex")
	}
	derived, err := scrypt.Key([]byte(passphrase), salt, n, r, p, dklen)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(crypto.Keccak256(derived[16:32], ct), mac) {
		return nil, errWrongPassphrase
	}
	plain, err := aesCTR(derived[:16], iv, ct)
	if err != nil {
		return nil, err
	}
	return crypto.ToECDSA(plain)
}

func aesCTR(key, iv, in []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(in))
	cipher.NewCTR(block, iv).XORKeyStream(out, in)
	return out, nil
}

type keystoreIV struct {
	IV string `json:"iv"`
}
