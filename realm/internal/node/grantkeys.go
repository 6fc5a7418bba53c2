package node

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/twin"
)

// GrantKeys are the grant keys of the node whose data directory this is,
// for a gateway to pin: the key ring's active key, and, when the node has
// not started since an earlier version, the grant key it will import
// (twin-grant-key.json) and announce the ring's key with. The ring is
// created (with ZR_KEY_PASSPHRASE) if the node has none yet.
func GrantKeys(dataDir string) ([]common.Address, error) {
	var out []common.Address
	if _, err := os.Stat(filepath.Join(dataDir, LegacyGrantKeyFile)); err == nil {
		legacy, err := twin.LoadOrCreateKeyFile(filepath.Join(dataDir, LegacyGrantKeyFile), "")
		if err != nil {
			return nil, err
		}
		out = append(out, legacy.Address())
	}
	pass := os.Getenv(PassphraseEnv)
	if pass == "" {
		pass = assets.DevPassphrase
	}
	ring, err := assets.OpenKeyRing(filepath.Join(dataDir, "keys"), pass, keystore.LightScryptN)
	if err != nil {
		return nil, fmt.Errorf("node keys: %w", err)
	}
	keys, err := ring.List()
	if err != nil {
		return nil, fmt.Errorf("node keys: %w", err)
	}
	if len(keys) == 0 && len(out) == 0 {
		// A new node: make its first key now, as its first start would.
		if _, err := ring.Active(); err != nil {
			return nil, fmt.Errorf("node keys: %w", err)
		}
		if keys, err = ring.List(); err != nil {
			return nil, fmt.Errorf("node keys: %w", err)
		}
	}
	for _, k := range keys {
		if k.Active && !slices.Contains(out, k.Address) {
			out = append(out, k.Address)
		}
	}
	return out, nil
}
