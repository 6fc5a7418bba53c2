package twin

import (
	"errors"
	"math"
	"sync"
	"time"
)

// CheckEnvelope refuses a value outside the actuator's range, and a move
// from current (when known) that would take longer than horizon at the
// actuator's maximum rate. The realm checks it against the last reported
// state; the gateway checks it again against where the actuator really is.
func (a Actuator) CheckEnvelope(op Op, valueMicro int64, current float64, haveCurrent bool, horizon time.Duration) error {
	if op == OpStop {
		return nil
	}
	v := FromMicro(valueMicro)
	if !finite(v) {
		return refuse(ReasonNotFinite, "value is not a finite number")
	}
	if v < a.Min || v > a.Max {
		return refuse(ReasonOutOfRange, "%s %s: %g %s is outside [%g, %g]", a.ID, a.Name, v, a.Unit, a.Min, a.Max)
	}
	if haveCurrent && horizon > 0 {
		if step, most := math.Abs(v-current), a.MaxRate*horizon.Seconds(); step > most*(1+1e-9) {
			return refuse(ReasonRateOfChange, "%s: moving %g %s from %g takes %.1fs at %g %s/s; one command may ask for at most %s of motion (%g %s)",
				a.ID, step, a.Unit, current, step/a.MaxRate, a.MaxRate, a.Unit, horizon, most, a.Unit)
		}
	}
	return nil
}

// Rate is a token bucket: PerSecond tokens refill each second up to Burst.
type Rate struct {
	PerSecond float64
	Burst     int
}

// GuardConfig configures a Guard. Zero values are the defaults.
type GuardConfig struct {
	// PerOperator limits one operator's commands across all actuators;
	// default 5/s with a burst of 10.
	PerOperator Rate
	// PerActuator limits commands to one actuator from everyone; default
	// 20/s with a burst of 20.
	PerActuator Rate
	// Horizon is how much full-rate motion one command may ask for;
	// default 10s.
	Horizon time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Guard applies the realm's checks that are not policy: the twin and
// actuator exist, the value is inside the envelope from the last reported
// state, and neither the operator nor the actuator exceeds its rate.
type Guard struct {
	reg *Registry
	cfg GuardConfig

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewGuard validates cfg.
func NewGuard(reg *Registry, cfg GuardConfig) (*Guard, error) {
	if reg == nil {
		return nil, errors.New("twin: guard needs a registry")
	}
	if cfg.PerOperator == (Rate{}) {
		cfg.PerOperator = Rate{PerSecond: 5, Burst: 10}
	}
	if cfg.PerActuator == (Rate{}) {
		cfg.PerActuator = Rate{PerSecond: 20, Burst: 20}
	}
	for _, r := range []Rate{cfg.PerOperator, cfg.PerActuator} {
		if r.PerSecond <= 0 || r.Burst < 1 || !finite(r.PerSecond) {
			return nil, errors.New("twin: a rate needs a positive PerSecond and a Burst of at least 1")
		}
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{reg: reg, cfg: cfg, buckets: map[string]*bucket{}}, nil
}

// Horizon is the guard's motion horizon, which gateways should share.
func (g *Guard) Horizon() time.Duration { return g.cfg.Horizon }

// Check runs the checks in order and returns the first refusal. A command
// refused for its envelope spends no rate tokens.
func (g *Guard) Check(c Command) (*Twin, Actuator, error) {
	t, a, err := g.reg.Lookup(c.Twin, c.Actuator)
	if err != nil {
		return nil, Actuator{}, err
	}
	st, ok := g.reg.State(c.Twin, c.Actuator)
	if err := a.CheckEnvelope(c.Op, c.ValueMicro, st.Value, ok, g.cfg.Horizon); err != nil {
		return t, a, err
	}
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	op := g.bucketFor("operator/"+c.Operator, g.cfg.PerOperator, now)
	act := g.bucketFor("actuator/"+c.Twin+"/"+c.Actuator, g.cfg.PerActuator, now)
	switch {
	case op.tokens < 1:
		return t, a, refuse(ReasonOperatorRate, "operator %s sends more than %g commands/s; wait a moment", c.Operator, g.cfg.PerOperator.PerSecond)
	case act.tokens < 1:
		return t, a, refuse(ReasonActuatorRate, "actuator %s/%s takes at most %g commands/s; wait a moment", c.Twin, c.Actuator, g.cfg.PerActuator.PerSecond)
	}
	op.tokens--
	act.tokens--
	return t, a, nil
}

func (g *Guard) bucketFor(key string, r Rate, now time.Time) *bucket {
	b, ok := g.buckets[key]
	if !ok {
		if len(g.buckets) > 100_000 {
			g.sweep(now)
		}
		b = &bucket{tokens: float64(r.Burst), last: now}
		g.buckets[key] = b
		return b
	}
	b.tokens = math.Min(float64(r.Burst), b.tokens+now.Sub(b.last).Seconds()*r.PerSecond)
	b.last = now
	return b
}

// sweep forgets buckets idle long enough to be full again.
func (g *Guard) sweep(now time.Time) {
	for k, b := range g.buckets {
		if now.Sub(b.last) > time.Minute {
			delete(g.buckets, k)
		}
	}
}
