package scenes

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/zerorealm/zerorealm/internal/risk"
	"github.com/zerorealm/zerorealm/policy"
)

// Scene is one validated scene definition. Scenes handed out by a [Catalog]
// are shared between callers and must not be modified.
type Scene struct {
	ID          string
	Name        string
	Description string
	Zones       []Zone
	Twins       []Twin
	Collections []Collection
	// PolicyFiles are the Cedar files as the scene names them, relative to
	// the scene's folder.
	PolicyFiles []string
	// Policies is nil for a scene that came from [Parse], which reads no
	// policy files.
	Policies *policy.Set
}

// Zone is an axis-aligned box in metres, in the OpenXR right-handed frame
// (y up). Every axis of Max is greater than the same axis of Min.
type Zone struct {
	ID   string
	Name string
	Min  [3]float64
	Max  [3]float64
}

// Contains reports whether p lies in the half-open box [Min, Max): zones
// that share a face then never both claim a point on it.
func (z Zone) Contains(p [3]float64) bool {
	for axis := range 3 {
		if p[axis] < z.Min[axis] || p[axis] >= z.Max[axis] {
			return false
		}
	}
	return true
}

func (z Zone) volume() float64 {
	return (z.Max[0] - z.Min[0]) * (z.Max[1] - z.Min[1]) * (z.Max[2] - z.Min[2])
}

// Twin is the digital twin of one machine standing in one zone.
type Twin struct {
	ID        string
	Name      string
	Zone      string
	Actuators []Actuator
}

// Actuator is one commandable value of a twin, with the envelope a command
// must stay inside.
type Actuator struct {
	ID      string
	Name    string
	Unit    string
	Min     float64
	Max     float64
	MaxRate float64 // largest change per second, in Unit
	Risk    Risk
}

// Risk grades what a wrong command to an actuator could do; policies demand
// more of the commander as it rises. It is the one vocabulary of
// internal/risk, which twin and agents name too.
type Risk = risk.Level

// The risks, from least to most dangerous.
const (
	RiskLow      = risk.Low
	RiskMedium   = risk.Medium
	RiskHigh     = risk.High
	RiskCritical = risk.Critical
)

// ErrUnknownRisk is returned by [ParseRisk] for a name that is not a risk.
var ErrUnknownRisk = risk.ErrUnknown

// ParseRisk returns the risk named s ("low", "medium", "high" or "critical").
func ParseRisk(s string) (Risk, error) { return risk.Parse(s) }

// Kind says how the items of a collection are counted.
type Kind string

// The collection kinds.
const (
	// KindUnique collections hold distinct items, each with one owner (as in ERC-721).
	KindUnique Kind = "unique"
	// KindFungible collections hold balances of interchangeable units (as in
	// ERC-1155 or a currency).
	KindFungible Kind = "fungible"
)

// ErrUnknownKind is returned by [ParseKind] for a name that is not a kind.
var ErrUnknownKind = errors.New("scenes: unknown collection kind")

// ParseKind returns the kind named s ("unique" or "fungible").
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindUnique, KindFungible:
		return k, nil
	}
	return "", fmt.Errorf("%w %q (want unique or fungible)", ErrUnknownKind, s)
}

// Collection is a family of assets that a scene brings into being.
type Collection struct {
	ID        string
	Name      string
	Kind      Kind
	Soulbound bool  // its assets can never change owner
	Decimals  uint8 // fungible only: how many base units make one displayed unit, as a power of ten
	Items     []Item
	Mints     []Mint
}

// Item is the initial mint of one unique asset.
type Item struct {
	ID string
	// Owner is [RealmOwner] or an EIP-55 checksummed address.
	Owner string
}

// Mint is an initial balance of a fungible collection.
type Mint struct {
	// To is [RealmOwner] or an EIP-55 checksummed address.
	To string
	// Amount is in base units, positive and below 2^256.
	Amount *big.Int
}

// RealmOwner names the realm's own treasury; the realm substitutes its
// address at run time, so one scene file serves every deployment.
const RealmOwner = "realm"

// Zone returns the zone with the given id.
func (s *Scene) Zone(id string) (*Zone, bool) {
	for i := range s.Zones {
		if s.Zones[i].ID == id {
			return &s.Zones[i], true
		}
	}
	return nil, false
}

// ZoneAt returns the zone that contains p. Zones may nest (a cell inside a
// hall), so the smallest containing zone wins; between equal volumes the one
// declared first does.
func (s *Scene) ZoneAt(p [3]float64) (*Zone, bool) {
	var best *Zone
	bestVolume := 0.0
	for i := range s.Zones {
		z := &s.Zones[i]
		if !z.Contains(p) {
			continue
		}
		if v := z.volume(); best == nil || v < bestVolume {
			best, bestVolume = z, v
		}
	}
	return best, best != nil
}

// Twin returns the twin with the given id.
func (s *Scene) Twin(id string) (*Twin, bool) {
	for i := range s.Twins {
		if s.Twins[i].ID == id {
			return &s.Twins[i], true
		}
	}
	return nil, false
}

// Actuator returns the actuator of t with the given id.
func (t *Twin) Actuator(id string) (*Actuator, bool) {
	for i := range t.Actuators {
		if t.Actuators[i].ID == id {
			return &t.Actuators[i], true
		}
	}
	return nil, false
}

// Collection returns the collection with the given id.
func (s *Scene) Collection(id string) (*Collection, bool) {
	for i := range s.Collections {
		if s.Collections[i].ID == id {
			return &s.Collections[i], true
		}
	}
	return nil, false
}
