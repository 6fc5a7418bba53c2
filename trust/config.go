package trust

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidConfig is returned by New when a Config field is out of range or
// the thresholds are in the wrong order.
var ErrInvalidConfig = errors.New("trust: invalid config")

// Defaults of the Config fields left zero.
const (
	DefaultPasskeyHalfLife = 15 * time.Minute
	DefaultBiometricMaxAge = 10 * time.Second
	DefaultMaxSkew         = 2 * time.Second
	DefaultNoBiometricCap  = 0.7
	DefaultHighRisk        = 0.8
	DefaultEnterTrusted    = 0.6
	DefaultLeaveTrusted    = 0.5
	DefaultEnterSuspended  = 0.15
	DefaultLeaveSuspended  = 0.3
)

// Config tunes the trust algorithm. Zero values mean the defaults written
// beside each field. A zero score threshold always means its default, so a
// threshold cannot be configured to exactly 0.
type Config struct {
	// PasskeyHalfLife (default 15m): the passkey factor halves with every
	// half-life since the last user-verified assertion.
	PasskeyHalfLife time.Duration

	// BiometricMaxAge (default 10s): a biometric reading older than this
	// counts as absent, because the stream that produced it has stopped.
	BiometricMaxAge time.Duration

	// MaxSkew (default 2s): how far past the tracker's clock a signal's time
	// may lie. Signals are stamped by whichever realm node saw them, and
	// node clocks differ a little; a signal from further ahead is a bug or a
	// forgery and is refused.
	MaxSkew time.Duration

	// NoBiometricCap (default 0.7): the highest score a session without a
	// live biometric stream can reach. It must stay below HighRisk, so that
	// a desktop console can never perform what only a verified wearer may.
	NoBiometricCap float64

	// HighRisk (default 0.8): the score that high-risk actions need. The
	// tracker does not enforce it (policies do); it is here so that New can
	// check NoBiometricCap against it and Explain can tell a person whether
	// the score suffices.
	HighRisk float64

	// EnterTrusted (default 0.6): a step-up session becomes trusted when its
	// score reaches this.
	EnterTrusted float64

	// LeaveTrusted (default 0.5): a trusted session falls back to step-up
	// when its score drops below this. It must be below EnterTrusted: the
	// band between them is what keeps a score that wavers around one
	// threshold from flapping the state.
	LeaveTrusted float64

	// EnterSuspended (default 0.15): any session whose score drops below
	// this is suspended (once it has presented a user-verified assertion).
	EnterSuspended float64

	// LeaveSuspended (default 0.3): the score a suspended session needs,
	// besides a user-verified passkey assertion made after the suspension,
	// to leave it. No score alone ever leaves suspended: suspension means
	// the evidence turned against the session, and only the person proving
	// presence again may end it.
	LeaveSuspended float64

	// Clock (default SystemClock) is read by every Observe and Assess.
	Clock Clock
}

// Engine holds a validated Config; it keeps no per-session state, so one
// Engine serves every Tracker of a realm.
type Engine struct {
	cfg Config
}

// New validates cfg, fills in its defaults and returns an Engine. Errors
// wrap ErrInvalidConfig.
func New(cfg Config) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg}, nil
}

// Config returns the engine's configuration with its defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// NewTracker returns the tracker of one session. It starts in step-up with a
// score of 0: every session is born from a passkey sign-in, which the realm
// observes first.
func (e *Engine) NewTracker() *Tracker {
	return &Tracker{cfg: &e.cfg, state: StepUp}
}

func (c *Config) fill() error {
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PasskeyHalfLife", &c.PasskeyHalfLife, DefaultPasskeyHalfLife},
		{"BiometricMaxAge", &c.BiometricMaxAge, DefaultBiometricMaxAge},
		{"MaxSkew", &c.MaxSkew, DefaultMaxSkew},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return fmt.Errorf("%w: %s = %v, want >= 0", ErrInvalidConfig, d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	scores := []struct {
		name string
		v    *float64
		def  float64
	}{
		{"NoBiometricCap", &c.NoBiometricCap, DefaultNoBiometricCap},
		{"HighRisk", &c.HighRisk, DefaultHighRisk},
		{"EnterTrusted", &c.EnterTrusted, DefaultEnterTrusted},
		{"LeaveTrusted", &c.LeaveTrusted, DefaultLeaveTrusted},
		{"EnterSuspended", &c.EnterSuspended, DefaultEnterSuspended},
		{"LeaveSuspended", &c.LeaveSuspended, DefaultLeaveSuspended},
	}
	for _, s := range scores {
		if *s.v == 0 {
			*s.v = s.def
		}
		if math.IsNaN(*s.v) || *s.v < 0 || *s.v > 1 {
			return fmt.Errorf("%w: %s = %v, want a score in (0, 1]", ErrInvalidConfig, s.name, *s.v)
		}
	}
	order := []struct {
		lowName, highName string
		low, high         float64
		strict            bool
	}{
		{"NoBiometricCap", "HighRisk", c.NoBiometricCap, c.HighRisk, true},
		{"EnterSuspended", "LeaveTrusted", c.EnterSuspended, c.LeaveTrusted, true},
		{"LeaveTrusted", "EnterTrusted", c.LeaveTrusted, c.EnterTrusted, true},
		{"EnterSuspended", "LeaveSuspended", c.EnterSuspended, c.LeaveSuspended, false},
	}
	for _, o := range order {
		if o.high < o.low || (o.strict && o.high == o.low) {
			rel := "<="
			if o.strict {
				rel = "<"
			}
			return fmt.Errorf("%w: want %s (%v) %s %s (%v)", ErrInvalidConfig, o.lowName, o.low, rel, o.highName, o.high)
		}
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	return nil
}
