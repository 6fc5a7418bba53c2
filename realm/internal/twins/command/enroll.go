package command

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// GatewayCredentials is what `zerorealm gateway enroll` hands a gateway:
// everything it needs to connect, verify grants and sign its answers. It
// holds secrets; the file is written with mode 0600.
type GatewayCredentials struct {
	Twin      string           `json:"twin"`
	Prefix    string           `json:"prefix"`
	NATSURL   string           `json:"nats_url,omitempty"`
	NKeySeed  string           `json:"nkey_seed"`
	Key       string           `json:"key"` // hex secp256k1 private key for acknowledgements
	RealmKeys []common.Address `json:"realm_keys"`
	Actuators []twin.Actuator  `json:"actuators"`
}

// Enroll issues a gateway's credentials for twinID, a twin of cat, and
// registers its public nkey and acknowledgement key in dataDir's
// GatewaysFile (dataDir is created if missing), replacing the twin's
// previous gateway. The gateway pins what realmKeys answers, the grant
// keys of the realm's nodes; it is asked only for a twin that exists, so
// that nothing (a key ring) is created for one that is not there.
func Enroll(dataDir string, cat *scenes.Catalog, prefix, twinID, natsURL string, realmKeys func() ([]common.Address, error)) (GatewayCredentials, error) {
	all, _ := TwinsOf(cat)
	reg, err := twin.NewRegistry(all)
	if err != nil {
		return GatewayCredentials{}, err
	}
	t, ok := reg.Twin(twinID)
	if !ok {
		return GatewayCredentials{}, fmt.Errorf("realm: no twin %q in the scenes", twinID)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: data dir: %w", err)
	}
	keys, err := realmKeys()
	if err != nil {
		return GatewayCredentials{}, err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return GatewayCredentials{}, err
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	ack, err := twin.GenerateSigner()
	if err != nil {
		return GatewayCredentials{}, err
	}
	enrolled, err := ReadEnrolledGateways(dataDir)
	if err != nil {
		return GatewayCredentials{}, err
	}
	kept := enrolled[:0]
	for _, e := range enrolled {
		if e.Twin != twinID {
			kept = append(kept, e)
		}
	}
	kept = append(kept, EnrolledGateway{Twin: twinID, NKey: pub, Address: ack.Address(), At: time.Now().UTC()})
	data, _ := json.MarshalIndent(map[string]any{"gateways": kept}, "", "  ")
	path := filepath.Join(dataDir, GatewaysFile)
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: write %s: %w", GatewaysFile, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: write %s: %w", GatewaysFile, err)
	}
	return GatewayCredentials{
		Twin: twinID, Prefix: prefix, NATSURL: natsURL, NKeySeed: string(seed), Key: ack.HexKey(),
		RealmKeys: keys, Actuators: t.Actuators,
	}, nil
}
