package twin

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/internal/ident"
	"github.com/zerorealm/zerorealm/internal/risk"
)

// Risk grades what a wrong command to an actuator could do: the one
// vocabulary of internal/risk, which scenes and agents name too, so a
// scene's actuator becomes a twin's without conversion.
type Risk = risk.Level

// The risks, from least to most dangerous.
const (
	RiskLow      = risk.Low
	RiskMedium   = risk.Medium
	RiskHigh     = risk.High
	RiskCritical = risk.Critical
)

// NeedsStepUp reports whether a command of risk r needs the requester's
// passkey step-up bound to its hash: high and critical actuators, and
// anything of unknown risk (fail closed).
func NeedsStepUp(r Risk) bool { return !r.AtMost(RiskMedium) }

// NeedsApproval reports whether a command of risk r needs a second
// operator's approval: critical actuators, and anything of unknown risk
// (fail closed).
func NeedsApproval(r Risk) bool { return !r.AtMost(RiskHigh) }

// Actuator is one commandable value of a twin with the envelope every
// command must stay inside.
type Actuator struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Unit    string  `json:"unit"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	MaxRate float64 `json:"max_rate"` // largest change per second, in Unit
	Risk    Risk    `json:"risk"`
}

// Twin is the digital twin of one machine, standing in one zone of a scene.
type Twin struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scene     string     `json:"scene"`
	Zone      string     `json:"zone"`
	Actuators []Actuator `json:"actuators"`
}

// Actuator returns the twin's actuator with the given id.
func (t *Twin) Actuator(id string) (Actuator, bool) {
	for _, a := range t.Actuators {
		if a.ID == id {
			return a, true
		}
	}
	return Actuator{}, false
}

// State is what the twin's gateway last reported about one actuator.
type State struct {
	Value  float64   `json:"value"`
	Target float64   `json:"target"`
	Moving bool      `json:"moving"`
	At     time.Time `json:"at"`
	// Seq orders reports of one gateway; an older report never replaces a
	// newer one.
	Seq uint64 `json:"seq"`
}

// MaxIDLength is the longest twin or actuator id; ids are NATS subject
// tokens as well as path segments.
const MaxIDLength = ident.MaxLength

// ValidID reports whether s is a twin or actuator id: the shared id of
// internal/ident (1 to 64 of a-z, 0-9 and '-'), the scene id alphabet,
// which is also safe as a subject token.
func ValidID(s string) bool { return ident.Valid(s) }

// ErrInvalidTwin reports a twin definition the registry refuses.
var ErrInvalidTwin = errors.New("twin: invalid twin definition")

func (a Actuator) validate() error {
	switch {
	case !ValidID(a.ID):
		return fmt.Errorf("actuator id %q: want 1 to %d of a-z, 0-9 and -", a.ID, MaxIDLength)
	case !finite(a.Min) || !finite(a.Max) || a.Min >= a.Max:
		return fmt.Errorf("actuator %s: envelope [%g, %g] is not a finite range", a.ID, a.Min, a.Max)
	case !finite(a.MaxRate) || a.MaxRate <= 0:
		return fmt.Errorf("actuator %s: max rate %g is not positive", a.ID, a.MaxRate)
	case !a.Risk.Known():
		return fmt.Errorf("actuator %s: unknown risk %q", a.ID, a.Risk)
	case math.Abs(a.Min) > MaxMagnitude || math.Abs(a.Max) > MaxMagnitude:
		return fmt.Errorf("actuator %s: envelope beyond ±%g", a.ID, float64(MaxMagnitude))
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Registry holds the twins of the realm's scenes and the live state their
// gateways report. It is safe for concurrent use.
type Registry struct {
	twins map[string]*Twin
	order []string

	mu     sync.RWMutex
	states map[stateKey]State
}

type stateKey struct{ twin, actuator string }

// NewRegistry validates twins. Twin ids must be unique across the realm:
// they name NATS subjects and gateway credentials.
func NewRegistry(twins []Twin) (*Registry, error) {
	r := &Registry{twins: map[string]*Twin{}, states: map[stateKey]State{}}
	for i := range twins {
		t := twins[i]
		if !ValidID(t.ID) {
			return nil, fmt.Errorf("%w: twin id %q: want 1 to %d of a-z, 0-9 and -", ErrInvalidTwin, t.ID, MaxIDLength)
		}
		if _, dup := r.twins[t.ID]; dup {
			return nil, fmt.Errorf("%w: twin id %q is used twice (twin ids are realm-wide: they name NATS subjects)", ErrInvalidTwin, t.ID)
		}
		seen := map[string]bool{}
		for _, a := range t.Actuators {
			if err := a.validate(); err != nil {
				return nil, fmt.Errorf("%w: twin %s: %v", ErrInvalidTwin, t.ID, err)
			}
			if seen[a.ID] {
				return nil, fmt.Errorf("%w: twin %s: actuator %q is declared twice", ErrInvalidTwin, t.ID, a.ID)
			}
			seen[a.ID] = true
		}
		t.Actuators = append([]Actuator(nil), t.Actuators...)
		r.twins[t.ID] = &t
		r.order = append(r.order, t.ID)
	}
	sort.Strings(r.order)
	return r, nil
}

// Twins returns every twin, sorted by id.
func (r *Registry) Twins() []Twin {
	out := make([]Twin, 0, len(r.order))
	for _, id := range r.order {
		t := *r.twins[id]
		t.Actuators = append([]Actuator(nil), t.Actuators...)
		out = append(out, t)
	}
	return out
}

// Twin returns the twin with the given id.
func (r *Registry) Twin(id string) (Twin, bool) {
	t, ok := r.twins[id]
	if !ok {
		return Twin{}, false
	}
	c := *t
	c.Actuators = append([]Actuator(nil), t.Actuators...)
	return c, true
}

// Lookup returns a twin and one of its actuators, or a refusal naming which
// of the two is unknown.
func (r *Registry) Lookup(twinID, actuatorID string) (*Twin, Actuator, error) {
	t, ok := r.twins[twinID]
	if !ok {
		return nil, Actuator{}, refuse(ReasonUnknownTwin, "no twin %q", twinID)
	}
	a, ok := t.Actuator(actuatorID)
	if !ok {
		return nil, Actuator{}, refuse(ReasonUnknownActuator, "twin %s has no actuator %q", twinID, actuatorID)
	}
	return t, a, nil
}

// SetState records a gateway's report; a report older than the one held
// (by Seq, then time) is ignored.
func (r *Registry) SetState(twinID, actuatorID string, s State) {
	if _, _, err := r.Lookup(twinID, actuatorID); err != nil {
		return
	}
	k := stateKey{twinID, actuatorID}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.states[k]; ok && (s.Seq < old.Seq || s.Seq == old.Seq && s.At.Before(old.At)) {
		return
	}
	r.states[k] = s
}

// State is the last reported state of an actuator.
func (r *Registry) State(twinID, actuatorID string) (State, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.states[stateKey{twinID, actuatorID}]
	return s, ok
}
