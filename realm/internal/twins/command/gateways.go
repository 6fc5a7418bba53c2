package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
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
				tw.Actuators = append(tw.Actuators, twin.Actuator{ID: a.ID, Name: a.Name, Unit: a.Unit, Min: a.Min, Max: a.Max, MaxRate: a.MaxRate, Risk: twin.Risk(a.Risk)})
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
