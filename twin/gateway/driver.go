package gateway

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/twin"
)

// Reading is an actuator's position and the target it is moving to.
type Reading struct {
	Value  float64
	Target float64
}

// Driver moves one actuator. A driver for a real device implements it over
// the device's fieldbus; the gateway has verified every command before it
// calls Move, and Stop must always be safe to call.
type Driver interface {
	// Move sets a new target; the device moves there at its own rate.
	Move(ctx context.Context, target float64) (Reading, error)
	// Stop holds the actuator where it is.
	Stop(ctx context.Context) (Reading, error)
	// Read is the actuator's reading now.
	Read() Reading
}

// SimConfig configures a simulated actuator.
type SimConfig struct {
	// Start is the initial position; default the envelope value nearest 0.
	Start *float64
	// Latency is how long a command takes to reach the device; default 0.
	Latency time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Sim is a simulated actuator with simple physics: it moves toward its
// target at no more than the actuator's maximum rate and never leaves its
// envelope.
type Sim struct {
	a   twin.Actuator
	cfg SimConfig

	mu     sync.Mutex
	value  float64
	target float64
	last   time.Time
}

// NewSim simulates actuator a.
func NewSim(a twin.Actuator, cfg SimConfig) *Sim {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	start := math.Max(a.Min, math.Min(a.Max, 0))
	if cfg.Start != nil {
		start = math.Max(a.Min, math.Min(a.Max, *cfg.Start))
	}
	return &Sim{a: a, cfg: cfg, value: start, target: start, last: cfg.Now()}
}

// advance moves the simulated position to now; callers hold mu.
func (s *Sim) advance() {
	now := s.cfg.Now()
	dt := now.Sub(s.last).Seconds()
	s.last = now
	if dt <= 0 {
		return
	}
	step := s.a.MaxRate * dt
	switch d := s.target - s.value; {
	case math.Abs(d) <= step:
		s.value = s.target
	case d > 0:
		s.value += step
	default:
		s.value -= step
	}
}

func (s *Sim) wait(ctx context.Context) error {
	if s.cfg.Latency <= 0 {
		return nil
	}
	t := time.NewTimer(s.cfg.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Move implements Driver.
func (s *Sim) Move(ctx context.Context, target float64) (Reading, error) {
	if err := s.wait(ctx); err != nil {
		return s.Read(), err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	s.target = math.Max(s.a.Min, math.Min(s.a.Max, target))
	return Reading{Value: s.value, Target: s.target}, nil
}

// Stop implements Driver.
func (s *Sim) Stop(ctx context.Context) (Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	s.target = s.value
	return Reading{Value: s.value, Target: s.target}, nil
}

// Read implements Driver.
func (s *Sim) Read() Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return Reading{Value: s.value, Target: s.target}
}
