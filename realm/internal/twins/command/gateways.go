package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// GatewaysFile, in the data directory, lists the enrolled gateways: their
// twin, public nkey and acknowledgement key address.
const GatewaysFile = "twin-gateways.json"

// EnrolledGateway is one entry of GatewaysFile.
type EnrolledGateway struct {
	Twin    string         `json:"twin"`
	NKey    string         `json:"nkey"`
	Address common.Address `json:"address"`
	At      time.Time      `json:"enrolled_at"`
}

// TwinsOf converts the scenes' twins to the registry's plain values, with
// the scene of each.
func TwinsOf(cat *scenes.Catalog) ([]twin.Twin, map[string]*scenes.Scene) {
	var out []twin.Twin
	sceneOf := map[string]*scenes.Scene{}
	for _, sc := range cat.Scenes() {
		for _, t := range sc.Twins {
			tw := twin.Twin{ID: t.ID, Name: t.Name, Scene: sc.ID, Zone: t.Zone}
			for _, a := range t.Actuators {
				tw.Actuators = append(tw.Actuators, twin.Actuator{ID: a.ID, Name: a.Name, Unit: a.Unit, Min: a.Min, Max: a.Max, MaxRate: a.MaxRate, Risk: a.Risk})
			}
			out = append(out, tw)
			sceneOf[t.ID] = sc
		}
	}
	return out, sceneOf
}

// ReadEnrolledGateways reads GatewaysFile; a missing file is no gateways.
func ReadEnrolledGateways(dataDir string) ([]EnrolledGateway, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, GatewaysFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("realm: enrolled gateways: %w", err)
	}
	return ParseEnrolledGateways(data)
}

// ParseEnrolledGateways parses the contents of GatewaysFile: every entry
// names a valid twin id, a public user nkey and an address, and no twin
// is enrolled twice.
func ParseEnrolledGateways(data []byte) ([]EnrolledGateway, error) {
	var doc struct {
		Gateways []EnrolledGateway `json:"gateways"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("realm: %s: %w", GatewaysFile, err)
	}
	seen := map[string]bool{}
	for _, g := range doc.Gateways {
		if !twin.ValidID(g.Twin) || !nkeys.IsValidPublicUserKey(g.NKey) || g.Address == (common.Address{}) {
			return nil, fmt.Errorf("realm: %s: entry for twin %q needs a twin id, a public user nkey and an address", GatewaysFile, g.Twin)
		}
		if seen[g.Twin] {
			return nil, fmt.Errorf("realm: %s: twin %s is enrolled twice; remove one entry", GatewaysFile, g.Twin)
		}
		seen[g.Twin] = true
	}
	return doc.Gateways, nil
}

// Gateways are who may act for the twins: the enrolled gateways, the
// credentials of those this node simulates (made before the embedded
// server starts, so that it can admit them), and each twin's
// acknowledgement key. The service's commands read the keys; the
// embedded server reads who to admit.
type Gateways struct {
	enrolled []EnrolledGateway
	sims     map[string]nkeys.KeyPair

	keysMu  sync.RWMutex
	keys    map[string]common.Address // twin => gateway acknowledgement key
	keyHexs map[string]string         // twin => its key's checksummed hex, for answers

	// The simulated gateways running, and their connections: appended
	// while the service starts, read once it has.
	running []*gateway.Gateway
	conns   []*nats.Conn
}

func newGateways(enrolled []EnrolledGateway) *Gateways {
	g := &Gateways{enrolled: enrolled, sims: map[string]nkeys.KeyPair{},
		keys: map[string]common.Address{}, keyHexs: map[string]string{}}
	for _, e := range enrolled {
		g.setKey(e.Twin, e.Address)
	}
	return g
}

// simulateUnenrolled makes simulated gateway credentials for every twin that
// has no enrolled gateway.
func (g *Gateways) simulateUnenrolled(twins []twin.Twin) error {
	for _, t := range twins {
		if _, ok := g.Key(t.ID); ok {
			continue
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return fmt.Errorf("realm: simulated gateway key: %w", err)
		}
		g.sims[t.ID] = kp
	}
	return nil
}

// NATSUsers are the gateways the embedded server admits, each confined to
// its twin: the enrolled ones and this run's simulated ones.
func (g *Gateways) NATSUsers() []natsembed.GatewayUser {
	var users []natsembed.GatewayUser
	for _, e := range g.enrolled {
		users = append(users, natsembed.GatewayUser{Twin: e.Twin, NKey: e.NKey})
	}
	for id, kp := range g.sims {
		pub, _ := kp.PublicKey()
		users = append(users, natsembed.GatewayUser{Twin: id, NKey: pub})
	}
	return users
}

// ClientListen is where the embedded NATS server listens for clients,
// given the configured address: there only while a gateway is enrolled,
// which connects from elsewhere; simulated ones connect in-process, and
// nothing else has any business there, so otherwise nowhere ("").
func (g *Gateways) ClientListen(configured string) string {
	if len(g.enrolled) == 0 {
		return ""
	}
	return configured
}

// Key is the address that signs twinID's acknowledgements.
func (g *Gateways) Key(twinID string) (common.Address, bool) {
	g.keysMu.RLock()
	defer g.keysMu.RUnlock()
	a, ok := g.keys[twinID]
	return a, ok
}

// keyHex is Key as answers show it, or "" if none.
func (g *Gateways) keyHex(twinID string) string {
	g.keysMu.RLock()
	defer g.keysMu.RUnlock()
	return g.keyHexs[twinID]
}

func (g *Gateways) setKey(twinID string, a common.Address) {
	g.keysMu.Lock()
	defer g.keysMu.Unlock()
	g.keys[twinID], g.keyHexs[twinID] = a, a.Hex()
}

// addSimulated records a simulated gateway that runs, with its
// connection and acknowledgement key.
func (g *Gateways) addSimulated(twinID string, gw *gateway.Gateway, nc *nats.Conn, key common.Address) {
	g.setKey(twinID, key)
	g.running = append(g.running, gw)
	g.conns = append(g.conns, nc)
}

func (g *Gateways) closeSimulated() {
	for _, gw := range g.running {
		gw.Close()
	}
	for _, nc := range g.conns {
		nc.Close()
	}
}

// SimulatedGateway is a simulated gateway and its NATS connection.
type SimulatedGateway struct {
	*gateway.Gateway
	Conn *nats.Conn
}

// Simulated are the gateways this node simulates.
func (g *Gateways) Simulated() []SimulatedGateway {
	out := make([]SimulatedGateway, len(g.running))
	for i, gw := range g.running {
		out[i] = SimulatedGateway{Gateway: gw, Conn: g.conns[i]}
	}
	return out
}
