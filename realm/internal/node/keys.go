package node

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/twin"
)

// LegacyGrantKeyFile is where earlier versions kept the realm's grant key
// (keystore v3, empty passphrase, mode 0600). A node imports it into its
// key ring at start and removes it; the ring's key signs grants.
const LegacyGrantKeyFile = "twin-grant-key.json"

// PassphraseEnv is the variable the node and `zerorealm keys` both read the
// ring's passphrase from, so that the two agree.
const PassphraseEnv = "ZR_KEY_PASSPHRASE"

// Keys is the node's key ring, opened once at start. The ring holds one
// secret per key generation: the secp256k1 key signs receipts, command
// grants, revocation notices and key rotations, and the node's Ed25519
// checkpoint key is derived from it (AuditKeys), so all rotate together
// with `zerorealm keys rotate`.
type Keys struct {
	Ring *assets.KeyRing
	// Active signs; Previous is the key it replaced, nil if none.
	Active, Previous *ecdsa.PrivateKey
	// Passphrase encrypts the ring and the custodial keys.
	Passphrase string
	// Legacy is the grant key of an earlier version, imported into the
	// ring as a retired key at this start: it announces the ring's
	// active key to the gateways that pinned it.
	Legacy *twin.Signer

	dataDir string
}

// KeyConfig says where the ring is and how it is encrypted.
type KeyConfig struct {
	DataDir string
	// Passphrase; empty reads PassphraseEnv, and without that the public
	// development passphrase, loudly.
	Passphrase string
	// ScryptN is the key derivation's cost; 0 is keystore.LightScryptN.
	ScryptN int
	Log     *slog.Logger
}

// OpenKeys opens the node's key ring (DataDir/keys), creating its first key
// if it has none, and imports the grant key of an earlier version.
func OpenKeys(cfg KeyConfig) (*Keys, error) {
	pass := cfg.Passphrase
	if pass == "" {
		pass = os.Getenv(PassphraseEnv)
	}
	if pass == "" {
		pass = assets.DevPassphrase
		cfg.Log.Warn("NODE KEYS ARE ENCRYPTED WITH THE PUBLIC DEVELOPMENT PASSPHRASE: anyone with the data directory can sign receipts, checkpoints and move custodial assets; set ZR_KEY_PASSPHRASE")
	}
	scryptN := cfg.ScryptN
	if scryptN == 0 {
		scryptN = keystore.LightScryptN
	}
	ring, err := assets.OpenKeyRing(filepath.Join(cfg.DataDir, "keys"), pass, scryptN)
	if err != nil {
		return nil, fmt.Errorf("node keys: %w", err)
	}
	k := &Keys{Ring: ring, Passphrase: pass, dataDir: cfg.DataDir}
	if k.Legacy, err = importLegacyGrantKey(cfg.DataDir, ring); err != nil {
		return nil, fmt.Errorf("node keys: %w", err)
	}
	if k.Active, err = ring.Active(); err != nil {
		return nil, fmt.Errorf("node keys: %w", err)
	}
	if k.Previous, err = ring.Previous(); err != nil {
		return nil, fmt.Errorf("node keys: %w", err)
	}
	return k, nil
}

// importLegacyGrantKey moves the grant key of earlier versions
// (DataDir/twin-grant-key.json, a key of its own protected only by the
// file's permissions) into the ring, encrypted, and removes the file. On a
// node whose ring is empty it becomes the ring's active key, so receipts,
// grants and checkpoints continue under the address enrolled gateways
// pinned. On a node whose ring has a key already, the ring's active key
// signs from now on and the old grant key is kept in the ring, retired; it
// is returned so that the node can announce the change to the gateways
// that pinned it (twin.KeyRotation, signed by the old key).
func importLegacyGrantKey(dataDir string, ring *assets.KeyRing) (*twin.Signer, error) {
	path := filepath.Join(dataDir, LegacyGrantKeyFile)
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	legacy, err := twin.LoadOrCreateKeyFile(path, "")
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	priv, err := crypto.HexToECDSA(legacy.HexKey())
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	keys, err := ring.List()
	if err != nil {
		return nil, err
	}
	created := info.ModTime()
	if len(keys) > 0 && !keys[0].Created.IsZero() && !created.Before(keys[0].Created) {
		// Retired keys sort before the ring's own, so that the key
		// before the active one stays the one it replaced.
		created = keys[0].Created.Add(-time.Second)
	}
	imported, err := ring.Import(priv, created, len(keys) == 0)
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("legacy grant key imported into the ring, but %s could not be removed: %w", LegacyGrantKeyFile, err)
	}
	if imported.Active {
		return nil, nil
	}
	return legacy, nil
}

// AuditKeys are the node's checkpoint keys for the log origin: the one
// derived from the ring's active key, and the one derived from the key
// before it (nil if none), which countersigns checkpoints so that
// witnesses that pinned it follow a rotation.
func (k *Keys) AuditKeys(origin string) (active, previous *audit.Key, err error) {
	derive := func(key *ecdsa.PrivateKey) (*audit.Key, error) {
		seed, err := assets.DeriveSeed(key, assets.CheckpointKeyLabel)
		if err != nil {
			return nil, err
		}
		return audit.NewKey(origin, seed)
	}
	if active, err = derive(k.Active); err != nil {
		return nil, nil, fmt.Errorf("checkpoint key: %w", err)
	}
	if k.Previous != nil {
		if previous, err = derive(k.Previous); err != nil {
			return nil, nil, fmt.Errorf("checkpoint key: %w", err)
		}
	}
	return active, previous, nil
}
