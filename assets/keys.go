package assets

import (
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// DevPassphrase encrypts keys when no passphrase is configured. It is for
// development only: anyone who reads this source can decrypt such keys, so
// the realm logs a warning whenever it is used.
const DevPassphrase = "zerorealm-dev-passphrase-not-secret"

// ErrPassphrase reports a key file the passphrase does not open.
var ErrPassphrase = errors.New("assets: wrong key passphrase")

// KeyRing is the realm node's receipt-signing keys in a directory, each an
// Ethereum keystore (v3) file, so the keys can be inspected and moved with
// standard tools. One is active; older ones stay so that their address can
// still be listed and exported as a past signer. The file "active" names
// the active key's file.
type KeyRing struct {
	dir        string
	passphrase string
	scryptN    int
	scryptP    int
}

// KeyInfo describes one key of a ring.
type KeyInfo struct {
	Address common.Address `json:"address"`
	Created time.Time      `json:"created"`
	Active  bool           `json:"active"`
	File    string         `json:"file"`
}

// OpenKeyRing opens the ring in dir, created if missing. scryptN 0 means
// keystore.StandardScryptN: about a second and 256 MiB to open a key, the
// price go-ethereum pays for files that may leak.
func OpenKeyRing(dir, passphrase string, scryptN int) (*KeyRing, error) {
	if passphrase == "" {
		return nil, errors.New("assets: empty key passphrase")
	}
	if scryptN == 0 {
		scryptN = keystore.StandardScryptN
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("assets: key dir: %w", err)
	}
	p := keystore.StandardScryptP
	if scryptN < keystore.StandardScryptN {
		p = keystore.LightScryptP
	}
	return &KeyRing{dir: dir, passphrase: passphrase, scryptN: scryptN, scryptP: p}, nil
}

const activeFile = "active"

// List returns the ring's keys, oldest first. It reads addresses from the
// files without decrypting them.
func (k *KeyRing) List() ([]KeyInfo, error) {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("assets: list keys: %w", err)
	}
	active, _ := os.ReadFile(filepath.Join(k.dir, activeFile))
	var out []KeyInfo
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(k.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var head struct {
			Address string `json:"address"`
		}
		if json.Unmarshal(data, &head) != nil || !common.IsHexAddress(head.Address) {
			continue
		}
		out = append(out, KeyInfo{
			Address: common.HexToAddress(head.Address),
			Created: keyCreated(e),
			Active:  strings.TrimSpace(string(active)) == e.Name(),
			File:    e.Name(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}

// keyFileTime is how a key file's name starts: the time Rotate created it.
const keyFileTime = "20060102T150405.000000000Z"

// keyCreated is when the key in the ring entry e was created: the time its
// name starts with, which a copy or a restore from backup keeps (verifiers
// check what a key signed against its period from this time on), or else
// the file's modification time.
func keyCreated(e os.DirEntry) time.Time {
	if stamp, _, ok := strings.Cut(e.Name(), "-"); ok {
		if t, err := time.Parse(keyFileTime, stamp); err == nil {
			return t.UTC()
		}
	}
	if info, err := e.Info(); err == nil {
		return info.ModTime().UTC()
	}
	return time.Time{}
}

// Active decrypts the active key, creating the first key if the ring is
// empty.
func (k *KeyRing) Active() (*ecdsa.PrivateKey, error) {
	name, err := os.ReadFile(filepath.Join(k.dir, activeFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, err := k.Rotate(); err != nil {
			return nil, err
		}
		name, err = os.ReadFile(filepath.Join(k.dir, activeFile))
	}
	if err != nil {
		return nil, fmt.Errorf("assets: read active key name: %w", err)
	}
	file := filepath.Join(k.dir, filepath.Base(strings.TrimSpace(string(name))))
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("assets: read active key: %w", err)
	}
	key, err := keystore.DecryptKey(data, k.passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPassphrase, file, err)
	}
	return key.PrivateKey, nil
}

// Rotate creates a new key and makes it the active one. The old keys stay
// in the ring; receipts they signed remain verifiable by their address.
func (k *KeyRing) Rotate() (KeyInfo, error) {
	priv, err := crypto.GenerateKey()
	if err != nil {
		return KeyInfo{}, err
	}
	data, err := EncryptKey(priv, k.passphrase, k.scryptN, k.scryptP)
	if err != nil {
		return KeyInfo{}, err
	}
	addr := crypto.PubkeyToAddress(priv.PublicKey)
	now := time.Now().UTC()
	name := fmt.Sprintf("%s-%s.json", now.Format(keyFileTime), strings.ToLower(addr.Hex()[2:]))
	if err := writeFileAtomic(filepath.Join(k.dir, name), data); err != nil {
		return KeyInfo{}, err
	}
	if err := writeFileAtomic(filepath.Join(k.dir, activeFile), []byte(name+"\n")); err != nil {
		return KeyInfo{}, err
	}
	return KeyInfo{Address: addr, Created: now, Active: true, File: name}, nil
}

// EncryptKey is a keystore v3 JSON of priv.
func EncryptKey(priv *ecdsa.PrivateKey, passphrase string, scryptN, scryptP int) ([]byte, error) {
	key := &keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}
	data, err := keystore.EncryptKey(key, passphrase, scryptN, scryptP)
	if err != nil {
		return nil, fmt.Errorf("assets: encrypt key: %w", err)
	}
	return data, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("assets: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("assets: write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Import adds an existing key to the ring, encrypted like the others and
// named with the time it was created, and makes it the active key if
// activate is set. A key the ring holds already is not added twice.
func (k *KeyRing) Import(priv *ecdsa.PrivateKey, created time.Time, activate bool) (KeyInfo, error) {
	if priv == nil {
		return KeyInfo{}, errors.New("assets: import a nil key")
	}
	addr := crypto.PubkeyToAddress(priv.PublicKey)
	keys, err := k.List()
	if err != nil {
		return KeyInfo{}, err
	}
	for _, info := range keys {
		if info.Address == addr {
			return info, nil
		}
	}
	data, err := EncryptKey(priv, k.passphrase, k.scryptN, k.scryptP)
	if err != nil {
		return KeyInfo{}, err
	}
	created = created.UTC()
	name := fmt.Sprintf("%s-%s.json", created.Format(keyFileTime), strings.ToLower(addr.Hex()[2:]))
	if err := writeFileAtomic(filepath.Join(k.dir, name), data); err != nil {
		return KeyInfo{}, err
	}
	if activate {
		if err := writeFileAtomic(filepath.Join(k.dir, activeFile), []byte(name+"\n")); err != nil {
			return KeyInfo{}, err
		}
	}
	return KeyInfo{Address: addr, Created: created, Active: activate, File: name}, nil
}

// Decrypt decrypts the key in the ring's file (as List names it).
func (k *KeyRing) Decrypt(file string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(k.dir, filepath.Base(file))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assets: read key: %w", err)
	}
	key, err := keystore.DecryptKey(data, k.passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPassphrase, path, err)
	}
	return key.PrivateKey, nil
}

// Previous decrypts the key that was active before the active one (by
// creation), nil if the active key is the first. A node countersigns with
// it after a rotation, so that those who pinned it can follow.
func (k *KeyRing) Previous() (*ecdsa.PrivateKey, error) {
	keys, err := k.List()
	if err != nil {
		return nil, err
	}
	for i, info := range keys {
		if !info.Active || i == 0 {
			continue
		}
		return k.Decrypt(keys[i-1].File)
	}
	return nil, nil
}

// CheckpointKeyLabel derives a node's Ed25519 audit checkpoint key from
// its ring key (see DeriveSeed).
const CheckpointKeyLabel = "zerorealm audit checkpoint key v1"

// BackgroundKeyLabel derives a node's Ed25519 key for the exchange of
// biometric background statistics with other realms (see DeriveSeed): a
// key of its own, so that a note it signs is never taken for a
// checkpoint.
const BackgroundKeyLabel = "zerorealm background exchange key v1"

// DeriveSeed derives a 32-byte seed for another kind of key from a ring
// key, with HKDF-SHA256 and the label as its info, so that one secret in
// the ring, encrypted, rotated and kept like the receipt key, also gives
// the node's Ed25519 key, which C2SP signed notes need. The derived key
// reveals nothing of the ring key, and each label gives an independent key.
func DeriveSeed(priv *ecdsa.PrivateKey, label string) ([]byte, error) {
	if priv == nil || label == "" {
		return nil, errors.New("assets: derive a seed from a key and a label")
	}
	seed, err := hkdf.Key(sha256.New, crypto.FromECDSA(priv), nil, label, 32)
	if err != nil {
		return nil, fmt.Errorf("assets: derive seed: %w", err)
	}
	return seed, nil
}
