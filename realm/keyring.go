package realm

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/audit"
)

// nodeKey opens the node's key ring (DataDir/keys, encrypted with
// Config.Assets.KeyPassphrase or ZR_KEY_PASSPHRASE) once and returns its
// active secp256k1 key. The ring holds one secret per key generation:
// the secp256k1 key signs receipts, and the node's Ed25519 checkpoint key
// is derived from it (auditKey), so both rotate together with
// `zerorealm keys rotate`.
func (r *Realm) nodeKey() (*ecdsa.PrivateKey, error) {
	if r.ringKey != nil {
		return r.ringKey, nil
	}
	cfg := r.cfg.Assets
	pass := cfg.KeyPassphrase
	if pass == "" {
		// The same variable `zerorealm keys` reads, so that the two agree.
		pass = os.Getenv("ZR_KEY_PASSPHRASE")
	}
	if pass == "" {
		pass = assets.DevPassphrase
		r.log.Warn("NODE KEYS ARE ENCRYPTED WITH THE PUBLIC DEVELOPMENT PASSPHRASE: anyone with the data directory can sign receipts, checkpoints and move custodial assets; set ZR_KEY_PASSPHRASE")
	}
	scryptN := cfg.KeyScryptN
	if scryptN == 0 {
		scryptN = keystore.LightScryptN
	}
	ring, err := assets.OpenKeyRing(filepath.Join(r.cfg.DataDir, "keys"), pass, scryptN)
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	key, err := ring.Active()
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	prev, err := ring.Previous()
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	r.ring, r.ringKey, r.ringPrev, r.ringPass = ring, key, prev, pass
	return key, nil
}

// auditKeys are the node's checkpoint keys: the one derived from the
// ring's active key, and the one derived from the key before it (nil if
// none), which countersigns checkpoints so that witnesses that pinned it
// follow a rotation.
func (r *Realm) auditKeys() (active, previous *audit.Key, err error) {
	key, err := r.nodeKey()
	if err != nil {
		return nil, nil, err
	}
	origin := audit.Origin(r.cfg.RPID, r.cfg.Node)
	derive := func(k *ecdsa.PrivateKey) (*audit.Key, error) {
		seed, err := assets.DeriveSeed(k, assets.CheckpointKeyLabel)
		if err != nil {
			return nil, err
		}
		return audit.NewKey(origin, seed)
	}
	if active, err = derive(key); err != nil {
		return nil, nil, fmt.Errorf("realm: checkpoint key: %w", err)
	}
	if r.ringPrev != nil {
		if previous, err = derive(r.ringPrev); err != nil {
			return nil, nil, fmt.Errorf("realm: checkpoint key: %w", err)
		}
	}
	return active, previous, nil
}
