package realm

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// Files of the twin feature in the data directory.
const (
	// TwinKeyFile is where earlier versions kept the realm's grant key
	// (keystore v3, empty passphrase, mode 0600). A node imports it into
	// its key ring at start and removes it; the ring's key signs grants.
	TwinKeyFile = "twin-grant-key.json"
	// TwinGatewaysFile lists the enrolled gateways: their twin, public
	// nkey and acknowledgement key address.
	TwinGatewaysFile = command.GatewaysFile
)

// GatewayCredentials is what `zerorealm gateway enroll` hands a gateway
// (see command.GatewayCredentials).
type GatewayCredentials = command.GatewayCredentials

// EnrollGateway issues a gateway's credentials for a twin of the realm's
// scenes and registers its public nkey and acknowledgement key in the data
// directory. A running realm admits it after a restart. Enrolling a twin
// again replaces its previous gateway.
//
// The gateway trusts the grant key of the node whose data directory this
// is (its key ring's active key, created if the ring is empty) and the
// grant keys of otherNodes, the realm's other nodes, as each one's
// `zerorealm keys export-public` prints them: every node signs grants with
// its own key, and the operator pins them all here, out of band, rather
// than letting a gateway learn keys from NATS.
func EnrollGateway(dataDir, scenesDir, prefix, twinID, natsURL string, otherNodes ...common.Address) (GatewayCredentials, error) {
	if prefix == "" {
		prefix = "zr"
	}
	var cat *scenes.Catalog
	var err error
	if scenesDir == "" {
		cat, err = scenes.LoadBuiltin()
	} else {
		cat, err = scenes.LoadDir(scenesDir)
	}
	if err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: scenes: %w", err)
	}
	// Refused before the key ring is created for a twin that is not there.
	all, _ := command.TwinsOf(cat)
	reg, err := twin.NewRegistry(all)
	if err != nil {
		return GatewayCredentials{}, err
	}
	if _, ok := reg.Twin(twinID); !ok {
		return GatewayCredentials{}, fmt.Errorf("realm: no twin %q in the scenes", twinID)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: data dir: %w", err)
	}
	realmKeys, err := grantKeys(dataDir)
	if err != nil {
		return GatewayCredentials{}, err
	}
	for _, k := range otherNodes {
		if !slices.Contains(realmKeys, k) {
			realmKeys = append(realmKeys, k)
		}
	}
	return command.Enroll(dataDir, cat, prefix, twinID, natsURL, realmKeys)
}

// grantKeys are the grant keys of the node whose data directory this is,
// for a gateway to pin: the key ring's active key, and, when the node has
// not started since an earlier version, the grant key it will import
// (twin-grant-key.json) and announce the ring's key with. The ring is
// created (with ZR_KEY_PASSPHRASE) if the node has none yet.
func grantKeys(dataDir string) ([]common.Address, error) {
	var out []common.Address
	if _, err := os.Stat(filepath.Join(dataDir, TwinKeyFile)); err == nil {
		legacy, err := twin.LoadOrCreateKeyFile(filepath.Join(dataDir, TwinKeyFile), "")
		if err != nil {
			return nil, err
		}
		out = append(out, legacy.Address())
	}
	pass := os.Getenv("ZR_KEY_PASSPHRASE")
	if pass == "" {
		pass = assets.DevPassphrase
	}
	ring, err := assets.OpenKeyRing(filepath.Join(dataDir, "keys"), pass, keystore.LightScryptN)
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	keys, err := ring.List()
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	if len(keys) == 0 && len(out) == 0 {
		// A new node: make its first key now, as its first start would.
		if _, err := ring.Active(); err != nil {
			return nil, fmt.Errorf("realm: node keys: %w", err)
		}
		if keys, err = ring.List(); err != nil {
			return nil, fmt.Errorf("realm: node keys: %w", err)
		}
	}
	for _, k := range keys {
		if k.Active && !slices.Contains(out, k.Address) {
			out = append(out, k.Address)
		}
	}
	return out, nil
}
