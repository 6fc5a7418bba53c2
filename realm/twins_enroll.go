package realm

import (
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/realm/internal/node"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
)

// Files of the twin feature in the data directory.
const (
	// TwinKeyFile is where earlier versions kept the realm's grant key;
	// a node imports it into its key ring at start and removes it.
	TwinKeyFile = node.LegacyGrantKeyFile
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
	cat, err := loadScenes(scenesDir)
	if err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: scenes: %w", err)
	}
	return command.Enroll(dataDir, cat, prefix, twinID, natsURL, func() ([]common.Address, error) {
		keys, err := node.GrantKeys(dataDir)
		if err != nil {
			return nil, fmt.Errorf("realm: %w", err)
		}
		for _, k := range otherNodes {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		return keys, nil
	})
}
