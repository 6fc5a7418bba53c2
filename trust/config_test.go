package trust_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

func TestNewDefaults(t *testing.T) {
	e, err := trust.New(trust.Config{})
	if err != nil {
		t.Fatalf("New(Config{}): %v", err)
	}
	got := e.Config()
	if _, ok := got.Clock.(trust.SystemClock); !ok {
		t.Errorf("default Clock = %T, want trust.SystemClock", got.Clock)
	}
	got.Clock = nil
	want := trust.Config{
		PasskeyHalfLife: 15 * time.Minute,
		BiometricMaxAge: 10 * time.Second,
		MaxSkew:         2 * time.Second,
		NoBiometricCap:  0.7,
		HighRisk:        0.8,
		EnterTrusted:    0.6,
		LeaveTrusted:    0.5,
		EnterSuspended:  0.15,
		LeaveSuspended:  0.3,
	}
	if got != want {
		t.Errorf("New(Config{}).Config() = %+v, want %+v", got, want)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  trust.Config
		ok   bool
	}{
		{"custom and ordered", trust.Config{PasskeyHalfLife: time.Hour, NoBiometricCap: 0.5, HighRisk: 0.9, EnterTrusted: 0.7, LeaveTrusted: 0.4, EnterSuspended: 0.1, LeaveSuspended: 0.1}, true},
		{"negative half-life", trust.Config{PasskeyHalfLife: -time.Second}, false},
		{"negative biometric max age", trust.Config{BiometricMaxAge: -time.Second}, false},
		{"negative skew", trust.Config{MaxSkew: -time.Second}, false},
		{"NaN cap", trust.Config{NoBiometricCap: math.NaN()}, false},
		{"cap above 1", trust.Config{NoBiometricCap: 1.5, HighRisk: 1}, false},
		{"negative threshold", trust.Config{EnterSuspended: -0.1}, false},
		{"cap equal to high risk", trust.Config{NoBiometricCap: 0.8}, false},
		{"cap above high risk", trust.Config{NoBiometricCap: 0.9}, false},
		{"high risk above 1", trust.Config{HighRisk: 1.2}, false},
		{"no hysteresis band", trust.Config{LeaveTrusted: 0.6}, false},
		{"leave above enter trusted", trust.Config{LeaveTrusted: 0.65}, false},
		{"suspended above leave trusted", trust.Config{EnterSuspended: 0.5}, false},
		{"leave suspended below enter suspended", trust.Config{LeaveSuspended: 0.1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := trust.New(tt.cfg)
			switch {
			case tt.ok && err != nil:
				t.Errorf("New(%+v) = %v, want no error", tt.cfg, err)
			case !tt.ok && !errors.Is(err, trust.ErrInvalidConfig):
				t.Errorf("New(%+v) = %v, want ErrInvalidConfig", tt.cfg, err)
			}
		})
	}
}
