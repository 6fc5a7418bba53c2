package trust_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

func TestNewTrackerStartsInStepUp(t *testing.T) {
	tr, _ := newTracker(t, trust.Config{})
	a := tr.Assess()
	if a.State != trust.StepUp || a.Score != 0 || a.Changed || a.PasskeyAge != -1 {
		t.Errorf("new tracker: Assess() = {State %q, Score %v, Changed %v, PasskeyAge %v}, want {step-up, 0, false, -1}",
			a.State, a.Score, a.Changed, a.PasskeyAge)
	}
	if got := a.Context()["passkey_age_s"]; got != int64(1)<<31 {
		t.Errorf("new tracker: passkey_age_s = %v, want 1<<31", got)
	}
}

func TestDecay(t *testing.T) {
	// Device 1 and, with a stream, a perfect match: the passkey factor p is
	// all that moves, so the score is 0.5·p + 0.5 with a stream and
	// min(0.7, (0.5·p + 0.2)/0.7) without one.
	tests := []struct {
		halfLives float64
		stream    bool
		want      float64
		wantAgeS  int64
	}{
		{0, true, 1, 0},
		{1, true, 0.75, 900},
		{2, true, 0.625, 1800},
		{0, false, 0.7, 0},
		{1, false, 0.45 / 0.7, 900},
		{2, false, 0.325 / 0.7, 1800},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v half-lives, stream %v", tt.halfLives, tt.stream), func(t *testing.T) {
			tr, clock := newTracker(t, trust.Config{})
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			observe(t, tr, trust.DeviceAssurance{At: t0, Level: 1})
			clock.Advance(time.Duration(tt.halfLives * float64(halfLife)))
			if tt.stream {
				observe(t, tr, trust.BiometricMatch{At: clock.Now(), Probability: 1})
			}
			a := tr.Assess()
			if !near(a.Score, tt.want) {
				t.Errorf("Score = %v, want %v", a.Score, tt.want)
			}
			if got := a.Context()["passkey_age_s"]; got != tt.wantAgeS {
				t.Errorf("Context()[passkey_age_s] = %v (%T), want %v", got, got, tt.wantAgeS)
			}
		})
	}
}

func TestCaps(t *testing.T) {
	perfect := trust.PasskeyAssertion{At: t0, UserVerified: true, Attested: true} // device-bound and attested: device 1
	tests := []struct {
		name     string
		cfg      trust.Config
		bioAge   time.Duration // reading this old when assessed; -1: no reading
		wantLive bool
		want     float64
	}{
		{"no stream", trust.Config{}, -1, false, 0.7},
		{"stale biometric counts as absent", trust.Config{}, 10*time.Second + time.Millisecond, false, 0.7},
		{"biometric at max age is live", trust.Config{}, 10 * time.Second, true, 1},
		{"configured cap", trust.Config{NoBiometricCap: 0.65}, -1, false, 0.65},
		{"configured max age", trust.Config{BiometricMaxAge: time.Minute}, 30 * time.Second, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clock := newTracker(t, tt.cfg)
			if tt.bioAge >= 0 {
				observe(t, tr, trust.BiometricMatch{At: t0, Probability: 1})
				clock.Advance(tt.bioAge)
			}
			perfect.At = clock.Now()
			observe(t, tr, perfect)
			if tt.bioAge >= 0 {
				// The passkey is fresh; only the reading has aged.
				clock.Set(t0.Add(tt.bioAge))
			}
			a := tr.Assess()
			if a.BiometricLive != tt.wantLive {
				t.Errorf("BiometricLive = %v, want %v", a.BiometricLive, tt.wantLive)
			}
			if !tt.wantLive && (a.Biometric != 0 || a.Context()["biometric"] != 0.0) {
				t.Errorf("without a live stream: Biometric = %v, context biometric = %v, want 0", a.Biometric, a.Context()["biometric"])
			}
			if !near(a.Score, tt.want) {
				t.Errorf("Score = %v, want %v", a.Score, tt.want)
			}
			if !tt.wantLive {
				e, _ := trust.New(tt.cfg)
				if c := e.Config(); a.Score > c.NoBiometricCap || a.Score >= c.HighRisk {
					t.Errorf("Score = %v without a stream, want <= NoBiometricCap %v < HighRisk %v", a.Score, c.NoBiometricCap, c.HighRisk)
				}
				if !slices.Contains(factorNames(a), "cap") {
					t.Errorf("Factors() = %v, want a cap factor", factorNames(a))
				}
			}
		})
	}
}

func TestHysteresis(t *testing.T) {
	t.Run("biometric wavering", func(t *testing.T) {
		tr, clock := newTracker(t, trust.Config{})
		// Device 0 and a fresh passkey: score = min(b, 0.5 + 0.3·b) = b for
		// every b up to 0.71, so each reading sets the score.
		observe(t, tr, trust.DeviceAssurance{At: t0, Level: 0})
		steps := []struct {
			name        string
			signal      trust.Signal
			wantScore   float64 // NaN: do not check
			wantState   trust.State
			wantPrev    trust.State
			wantChanged bool
		}{
			{"sign-in", trust.PasskeyAssertion{At: t0, UserVerified: true}, 0.7, trust.Trusted, trust.StepUp, true},
			{"0.55 in band", trust.BiometricMatch{At: t0, Probability: 0.55}, 0.55, trust.Trusted, trust.Trusted, false},
			{"0.59 in band", trust.BiometricMatch{At: t0, Probability: 0.59}, 0.59, trust.Trusted, trust.Trusted, false},
			{"0.50 at leave", trust.BiometricMatch{At: t0, Probability: 0.50}, 0.50, trust.Trusted, trust.Trusted, false},
			{"0.49 below leave", trust.BiometricMatch{At: t0, Probability: 0.49}, 0.49, trust.StepUp, trust.Trusted, true},
			{"0.59 back in band", trust.BiometricMatch{At: t0, Probability: 0.59}, 0.59, trust.StepUp, trust.StepUp, false},
			{"0.55 in band", trust.BiometricMatch{At: t0, Probability: 0.55}, 0.55, trust.StepUp, trust.StepUp, false},
			{"0.60 at enter", trust.BiometricMatch{At: t0, Probability: 0.60}, 0.60, trust.Trusted, trust.StepUp, true},
			{"0.14 below suspend", trust.BiometricMatch{At: t0, Probability: 0.14}, 0.14, trust.Suspended, trust.Trusted, true},
			{"0.90 does not leave", trust.BiometricMatch{At: t0, Probability: 0.90}, 0.77, trust.Suspended, trust.Suspended, false},
			{"unverified assertion does not leave", trust.PasskeyAssertion{At: t0, UserVerified: false}, math.NaN(), trust.Suspended, trust.Suspended, false},
		}
		for _, s := range steps {
			a := observe(t, tr, s.signal)
			if !math.IsNaN(s.wantScore) && !near(a.Score, s.wantScore) {
				t.Errorf("%s: Score = %v, want %v", s.name, a.Score, s.wantScore)
			}
			if a.State != s.wantState || a.Previous != s.wantPrev || a.Changed != s.wantChanged {
				t.Errorf("%s: {State %q, Previous %q, Changed %v}, want {%q, %q, %v}",
					s.name, a.State, a.Previous, a.Changed, s.wantState, s.wantPrev, s.wantChanged)
			}
		}
		clock.Advance(time.Second)
		a := observe(t, tr, trust.PasskeyAssertion{At: clock.Now(), UserVerified: true})
		if a.State != trust.Trusted || a.Previous != trust.Suspended || !a.Changed {
			t.Errorf("fresh user-verified assertion: {State %q, Previous %q, Changed %v}, want {trusted, suspended, true}", a.State, a.Previous, a.Changed)
		}
	})

	t.Run("decay crosses thresholds", func(t *testing.T) {
		tr, clock := newTracker(t, trust.Config{})
		observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true}) // device 0.7 from its flags
		steps := []struct {
			at          time.Duration
			wantScore   float64
			wantState   trust.State
			wantChanged bool
		}{
			{halfLife, (0.25 + 0.14) / 0.7, trust.Trusted, false},
			{2 * halfLife, (0.125 + 0.14) / 0.7, trust.StepUp, true},
			{2*halfLife + time.Minute, (0.5*math.Exp2(-31.0/15) + 0.14) / 0.7, trust.StepUp, false},
			{5 * halfLife, (0.5/32 + 0.14) / 0.7, trust.StepUp, false},
			{7 * halfLife, (0.5/128 + 0.14) / 0.7, trust.StepUp, false},
		}
		for _, s := range steps {
			clock.Set(t0.Add(s.at))
			a := tr.Assess()
			if !near(a.Score, s.wantScore) || a.State != s.wantState || a.Changed != s.wantChanged {
				t.Errorf("Assess() at +%v = {Score %v, State %q, Changed %v}, want {%v, %q, %v}",
					s.at, a.Score, a.State, a.Changed, s.wantScore, s.wantState, s.wantChanged)
			}
		}
		// With a weak device the same decay ends in suspension.
		tr, clock = newTracker(t, trust.Config{})
		observe(t, tr, trust.DeviceAssurance{At: t0, Level: 0.2})
		observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
		clock.Set(t0.Add(4 * halfLife))
		if a := tr.Assess(); a.State != trust.Suspended || !a.Changed || a.Previous != trust.Trusted {
			t.Errorf("weak device after 4 half-lives: {State %q, Previous %q, Changed %v}, want {suspended, trusted, true}", a.State, a.Previous, a.Changed)
		}
	})
}

func TestStates(t *testing.T) {
	// Signals are observed in the order device, biometric, liveness,
	// passkey, all at the clock's time except the stale passkey (four
	// half-lives old): the session waits in step-up until its passkey, so
	// the final state is decided by the complete evidence.
	type key struct{ passkey, biometric, device string }
	want := map[key]trust.State{
		{"fresh", "high", "high"}: trust.Trusted,
		{"fresh", "high", "low"}:  trust.Trusted,
		{"fresh", "low", "high"}:  trust.StepUp, // capped at the 0.3 match
		{"fresh", "low", "low"}:   trust.StepUp,
		{"fresh", "none", "high"}: trust.Trusted, // capped at 0.7: trusted, not high-risk
		{"fresh", "none", "low"}:  trust.Trusted,
		{"stale", "high", "high"}: trust.StepUp,
		{"stale", "high", "low"}:  trust.StepUp,
		{"stale", "low", "high"}:  trust.StepUp,
		{"stale", "low", "low"}:   trust.StepUp,
		{"stale", "none", "high"}: trust.StepUp,
		{"stale", "none", "low"}:  trust.Suspended, // nothing left: 0.10
		{"never", "high", "high"}: trust.StepUp,
		{"never", "high", "low"}:  trust.StepUp,
		{"never", "low", "high"}:  trust.StepUp,
		{"never", "low", "low"}:   trust.StepUp,
		{"never", "none", "high"}: trust.StepUp,
		{"never", "none", "low"}:  trust.StepUp,
	}
	biometric := map[string]float64{"high": 0.95, "low": 0.3}
	device := map[string]float64{"high": 1, "low": 0.2}
	passkeyAge := map[string]time.Duration{"fresh": 0, "stale": 4 * halfLife}
	for k, wantOK := range want {
		for _, live := range []bool{true, false} {
			t.Run(fmt.Sprintf("passkey %s, biometric %s, device %s, live %v", k.passkey, k.biometric, k.device, live), func(t *testing.T) {
				tr, clock := newTracker(t, trust.Config{})
				clock.Set(t0.Add(time.Hour))
				now := clock.Now()
				observe(t, tr, trust.DeviceAssurance{At: now, Level: device[k.device]})
				if b, ok := biometric[k.biometric]; ok {
					observe(t, tr, trust.BiometricMatch{At: now, Probability: b})
				}
				observe(t, tr, trust.Liveness{At: now, Live: live, Reason: "replay"})
				if age, ok := passkeyAge[k.passkey]; ok {
					observe(t, tr, trust.PasskeyAssertion{At: now.Add(-age), UserVerified: true})
				}
				a := tr.Assess()
				wantState := wantOK
				if !live {
					wantState = trust.Suspended
				}
				if a.State != wantState {
					t.Errorf("State = %q (score %.3f), want %q", a.State, a.Score, wantState)
				}
				if !live && a.Score != 0 {
					t.Errorf("failed liveness: Score = %v, want 0", a.Score)
				}
			})
		}
	}
}

func TestHardSignals(t *testing.T) {
	tests := []struct {
		name   string
		signal func(at time.Time) trust.Signal
		factor string
	}{
		{"credential cloned", func(at time.Time) trust.Signal { return trust.CredentialCloned{At: at, Credential: "cred-A"} }, "credential-cloned"},
		{"liveness failed", func(at time.Time) trust.Signal { return trust.Liveness{At: at, Live: false, Reason: "replay"} }, "liveness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clock := newTracker(t, trust.Config{})
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true, Attested: true, Credential: "cred-A"})
			observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.95})

			clock.Advance(time.Minute)
			hardAt := clock.Now()
			a := observe(t, tr, tt.signal(hardAt))
			if a.State != trust.Suspended || a.Previous != trust.Trusted || !a.Changed || a.Score != 0 {
				t.Fatalf("after %s: {State %q, Previous %q, Changed %v, Score %v}, want {suspended, trusted, true, 0}",
					tt.name, a.State, a.Previous, a.Changed, a.Score)
			}
			if !slices.Contains(factorNames(a), tt.factor) {
				t.Errorf("Factors() = %v, want %q among them", factorNames(a), tt.factor)
			}

			clock.Advance(time.Second)
			now := clock.Now()
			stays := []struct {
				name   string
				signal trust.Signal
			}{
				{"perfect biometric", trust.BiometricMatch{At: now, Probability: 1}},
				{"perfect device", trust.DeviceAssurance{At: now, Level: 1}},
				{"passed liveness", trust.Liveness{At: now, Live: true}},
				{"assertion without user verification", trust.PasskeyAssertion{At: now, UserVerified: false, Credential: "cred-B"}},
				{"user-verified assertion made before the signal", trust.PasskeyAssertion{At: hardAt.Add(-time.Second), UserVerified: true, Credential: "cred-B"}},
				{"user-verified assertion made with the signal", trust.PasskeyAssertion{At: hardAt, UserVerified: true, Credential: "cred-B"}},
			}
			for _, s := range stays {
				a := observe(t, tr, s.signal)
				if a.State != trust.Suspended || a.Changed || a.Score != 0 {
					t.Errorf("%s: {State %q, Changed %v, Score %v}, want {suspended, false, 0}", s.name, a.State, a.Changed, a.Score)
				}
			}
			clock.Advance(time.Hour)
			if a := tr.Assess(); a.State != trust.Suspended {
				t.Errorf("an hour later: State = %q, want suspended", a.State)
			}

			if tt.factor == "credential-cloned" {
				before := tr.Assess()
				_, err := tr.Observe(trust.PasskeyAssertion{At: clock.Now(), UserVerified: true, Credential: "cred-A"})
				if !errors.Is(err, trust.ErrClonedCredential) {
					t.Errorf("assertion from the cloned credential: Observe() = %v, want ErrClonedCredential", err)
				}
				if after := tr.Assess(); after.State != before.State || after.Score != before.Score {
					t.Errorf("refused assertion changed the tracker: %q %v -> %q %v", before.State, before.Score, after.State, after.Score)
				}
			}

			observe(t, tr, trust.BiometricMatch{At: clock.Now(), Probability: 0.95})
			a = observe(t, tr, trust.PasskeyAssertion{At: clock.Now(), UserVerified: true, Credential: "cred-B"})
			if a.State != trust.Trusted || a.Previous != trust.Suspended || !a.Changed {
				t.Errorf("fresh user-verified assertion: {State %q, Previous %q, Changed %v}, want {trusted, suspended, true}", a.State, a.Previous, a.Changed)
			}
			if slices.Contains(factorNames(a), tt.factor) {
				t.Errorf("Factors() = %v after the lift, want no %q", factorNames(a), tt.factor)
			}
		})
	}
}

func TestLeaveSuspendedNeedsScore(t *testing.T) {
	tr, clock := newTracker(t, trust.Config{})
	observe(t, tr, trust.DeviceAssurance{At: t0, Level: 0})
	observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
	if a := observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.1}); a.State != trust.Suspended {
		t.Fatalf("match 0.1: State = %q, want suspended", a.State)
	}
	clock.Advance(time.Second)
	// The assertion arms the exit, but the match still caps the score at 0.2.
	observe(t, tr, trust.BiometricMatch{At: clock.Now(), Probability: 0.2})
	a := observe(t, tr, trust.PasskeyAssertion{At: clock.Now(), UserVerified: true})
	if a.State != trust.Suspended || !strings.Contains(a.Explain(), "must still reach 0.30") {
		t.Errorf("armed, score %.2f: State = %q, Explain() = %q, want suspended and why", a.Score, a.State, a.Explain())
	}
	// Once the motion matches again, no second assertion is needed.
	a = observe(t, tr, trust.BiometricMatch{At: clock.Now(), Probability: 0.5})
	if a.State != trust.StepUp || a.Previous != trust.Suspended {
		t.Errorf("armed, match 0.5: {State %q, Previous %q}, want {step-up, suspended}", a.State, a.Previous)
	}
}

func TestContextPenalties(t *testing.T) {
	tests := []struct {
		name    string
		signals []trust.Signal
		want    float64
		factor  string
	}{
		{"address change after the assertion", []trust.Signal{trust.ContextChange{At: t0.Add(time.Second), AddressChanged: true}}, 0.75, "address-change"},
		{"address change before the assertion", []trust.Signal{trust.ContextChange{At: t0.Add(-time.Second), AddressChanged: true}}, 0.95, ""},
		{"one session", []trust.Signal{trust.ContextChange{At: t0, ConcurrentSessions: 1}}, 0.95, ""},
		{"three sessions", []trust.Signal{trust.ContextChange{At: t0, ConcurrentSessions: 3}}, 0.75, "concurrent-sessions"},
		{"ten sessions cost at most 0.3", []trust.Signal{trust.ContextChange{At: t0, ConcurrentSessions: 10}}, 0.65, "concurrent-sessions"},
		{"unknown count keeps the last", []trust.Signal{
			trust.ContextChange{At: t0, ConcurrentSessions: 3},
			trust.ContextChange{At: t0.Add(time.Second), AddressChanged: false},
		}, 0.75, "concurrent-sessions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clock := newTracker(t, trust.Config{})
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true, Attested: true})
			observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.95})
			clock.Set(t0.Add(time.Second))
			for _, s := range tt.signals {
				observe(t, tr, s)
			}
			clock.Set(t0) // keep the passkey factor at exactly 1
			a := tr.Assess()
			if !near(a.Score, tt.want) {
				t.Errorf("Score = %v, want %v", a.Score, tt.want)
			}
			if tt.factor != "" && !slices.Contains(factorNames(a), tt.factor) {
				t.Errorf("Factors() = %v, want %q among them", factorNames(a), tt.factor)
			}
		})
	}
}

func TestInvalidSignals(t *testing.T) {
	var nilSignal trust.Signal
	tests := []struct {
		name   string
		signal func(now time.Time) trust.Signal
	}{
		{"NaN probability", func(now time.Time) trust.Signal { return trust.BiometricMatch{At: now, Probability: math.NaN()} }},
		{"probability 1.5", func(now time.Time) trust.Signal { return trust.BiometricMatch{At: now, Probability: 1.5} }},
		{"negative probability", func(now time.Time) trust.Signal { return trust.BiometricMatch{At: now, Probability: -0.1} }},
		{"infinite device level", func(now time.Time) trust.Signal { return trust.DeviceAssurance{At: now, Level: math.Inf(1)} }},
		{"zero time", func(time.Time) trust.Signal { return trust.BiometricMatch{Probability: 0.9} }},
		{"zero time hard signal", func(time.Time) trust.Signal { return trust.Liveness{Live: false} }},
		{"far future", func(now time.Time) trust.Signal {
			return trust.PasskeyAssertion{At: now.Add(time.Hour), UserVerified: true}
		}},
		{"just beyond the skew", func(now time.Time) trust.Signal {
			return trust.BiometricMatch{At: now.Add(trust.DefaultMaxSkew + time.Nanosecond), Probability: 0.9}
		}},
		{"backed up without backup eligibility", func(now time.Time) trust.Signal {
			return trust.PasskeyAssertion{At: now, UserVerified: true, BackedUp: true}
		}},
		{"negative sessions", func(now time.Time) trust.Signal { return trust.ContextChange{At: now, ConcurrentSessions: -1} }},
		{"nil", func(time.Time) trust.Signal { return nilSignal }},
		{"pointer", func(now time.Time) trust.Signal { return &trust.BiometricMatch{At: now, Probability: 0.9} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clock := newTracker(t, trust.Config{})
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.8})
			clock.Advance(time.Minute)
			before := tr.Assess()
			s := tt.signal(clock.Now())
			a, err := tr.Observe(s)
			if !errors.Is(err, trust.ErrInvalidSignal) {
				t.Fatalf("Observe(%#v) = %v, want ErrInvalidSignal", s, err)
			}
			var se *trust.SignalError
			if !errors.As(err, &se) || se.Reason == "" {
				t.Errorf("Observe(%#v) = %#v, want a *SignalError with a reason", s, err)
			}
			if a.State != "" || a.Score != 0 {
				t.Errorf("Observe(%#v) returned %+v with its error, want the zero Assessment", s, a)
			}
			after := tr.Assess()
			if after.Score != before.Score || after.State != before.State || after.Changed ||
				!reflect.DeepEqual(after.Factors(), before.Factors()) {
				t.Errorf("invalid signal changed the tracker:\nbefore %s\nafter  %s", before.Explain(), after.Explain())
			}
		})
	}
	t.Run("at the skew limit", func(t *testing.T) {
		tr, clock := newTracker(t, trust.Config{})
		if _, err := tr.Observe(trust.BiometricMatch{At: clock.Now().Add(trust.DefaultMaxSkew), Probability: 0.9}); err != nil {
			t.Errorf("Observe(reading %v ahead) = %v, want no error", trust.DefaultMaxSkew, err)
		}
	})
}

func TestOutOfOrderSignalsAreDropped(t *testing.T) {
	tr, clock := newTracker(t, trust.Config{})
	observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
	clock.Advance(5 * time.Second)
	want := observe(t, tr, trust.BiometricMatch{At: clock.Now(), Probability: 0.9})
	late := observe(t, tr, trust.BiometricMatch{At: clock.Now().Add(-time.Second), Probability: 0.2})
	if late.Score != want.Score || late.Biometric != 0.9 {
		t.Errorf("late reading 0.2: {Score %v, Biometric %v}, want {%v, 0.9}", late.Score, late.Biometric, want.Score)
	}
	older := observe(t, tr, trust.PasskeyAssertion{At: t0.Add(-time.Minute), UserVerified: true})
	if older.PasskeyAge != 5*time.Second {
		t.Errorf("older assertion: PasskeyAge = %v, want 5s", older.PasskeyAge)
	}
}

func TestDeviceAssurance(t *testing.T) {
	tests := []struct {
		name    string
		signals []trust.Signal
		want    float64
	}{
		{"nothing known", nil, 0},
		{"attested device-bound", []trust.Signal{trust.PasskeyAssertion{At: t0, Attested: true}}, 1},
		{"attested syncable", []trust.Signal{trust.PasskeyAssertion{At: t0, Attested: true, BackupEligible: true}}, 0.85},
		{"attested synced", []trust.Signal{trust.PasskeyAssertion{At: t0, Attested: true, BackupEligible: true, BackedUp: true}}, 0.7},
		{"unattested device-bound", []trust.Signal{trust.PasskeyAssertion{At: t0}}, 0.7},
		{"unattested synced", []trust.Signal{trust.PasskeyAssertion{At: t0, BackupEligible: true, BackedUp: true}}, 0.4},
		{"report refines the assertion at the same time", []trust.Signal{
			trust.PasskeyAssertion{At: t0}, trust.DeviceAssurance{At: t0, Level: 0.9},
		}, 0.9},
		{"report stands against an assertion at the same time", []trust.Signal{
			trust.DeviceAssurance{At: t0, Level: 0.9}, trust.PasskeyAssertion{At: t0},
		}, 0.9},
		{"newer assertion replaces an older report", []trust.Signal{
			trust.DeviceAssurance{At: t0, Level: 0.9}, trust.PasskeyAssertion{At: t0.Add(time.Second), BackupEligible: true, BackedUp: true},
		}, 0.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clock := newTracker(t, trust.Config{})
			clock.Advance(time.Second)
			for _, s := range tt.signals {
				observe(t, tr, s)
			}
			a := tr.Assess()
			if !near(a.DeviceAssurance, tt.want) {
				t.Errorf("DeviceAssurance = %v, want %v", a.DeviceAssurance, tt.want)
			}
			if got := a.Context()["device_assurance"]; got != a.DeviceAssurance {
				t.Errorf("Context()[device_assurance] = %v, want %v", got, a.DeviceAssurance)
			}
		})
	}
}

func TestContext(t *testing.T) {
	tr, clock := newTracker(t, trust.Config{})
	observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true, Attested: true})
	clock.Advance(7*time.Minute + 300*time.Millisecond)
	observe(t, tr, trust.BiometricMatch{At: clock.Now(), Probability: 0.93})
	a := tr.Assess()
	got := a.Context()
	want := map[string]any{
		"state":            "trusted",
		"score":            a.Score,
		"biometric":        0.93,
		"passkey_age_s":    int64(420),
		"device_assurance": 1.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Context() = %#v, want %#v", got, want)
	}
	if _, ok := got["score"].(float64); !ok {
		t.Errorf("Context()[score] is %T, want float64", got["score"])
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, tr *trust.Tracker, clock *trust.ManualClock) trust.Assessment
		want []string
	}{
		{"headset, fresh passkey", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.95})
			return observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true, Attested: true})
		}, []string{"Trusted, score 0.95 (was step-up)", "enough for high-risk actions (0.80)", "probability 0.95", "user-verified passkey 0s ago (half-life 15m)", "attested, device-bound"}},
		{"desktop", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			return observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true, BackupEligible: true, BackedUp: true})
		}, []string{"Trusted, score 0.70", "below the 0.80 that high-risk actions need", "capped at 0.70 without a live biometric stream", "no biometric stream", "synced"}},
		{"decayed", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			c.Advance(30 * time.Minute)
			return tr.Assess()
		}, []string{"Step-up, score 0.38 (was trusted)", "user-verified passkey 30m ago (half-life 15m)", "Trusted again at 0.60"}},
		{"stale stream", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.9})
			c.Advance(42 * time.Second)
			return tr.Assess()
		}, []string{"the last reading is 42s old (limit 10s)", "user-verified passkey 42s ago"}},
		{"low match", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			return observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.3})
		}, []string{"Step-up, score 0.30 (was trusted)", "biometric match caps the score below the 0.60", "never exceeds the probability"}},
		{"replay", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			return observe(t, tr, trust.Liveness{At: t0, Reason: "replayed motion"})
		}, []string{"Suspended, score 0.00 (was trusted)", "liveness check failed", "replayed motion", "made after it"}},
		{"cloned", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			return observe(t, tr, trust.CredentialCloned{At: t0, Credential: "cred-A"})
		}, []string{"Suspended, score 0.00 (was trusted)", "Credential cred-A was reported cloned", "signature counter went backwards"}},
		{"never signed in", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			return observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.9})
		}, []string{"Step-up", "waits in step-up for its sign-in", "no passkey assertion yet"}},
		{"suspended by the score", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			return observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.1})
		}, []string{"Suspended, score 0.10 (was trusted)", "fell below 0.15", "new user-verified passkey assertion"}},
		{"penalties", func(t *testing.T, tr *trust.Tracker, c *trust.ManualClock) trust.Assessment {
			observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
			observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.9})
			c.Advance(time.Second)
			return observe(t, tr, trust.ContextChange{At: c.Now(), AddressChanged: true, ConcurrentSessions: 2})
		}, []string{"network address changed 0s ago", "-0.20", "2 concurrent sessions: -0.10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clock := newTracker(t, trust.Config{})
			got := tt.run(t, tr, clock).Explain()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Explain() = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

// TestConcurrent runs Observe and Assess from many goroutines (run it with
// -race) and checks that the transitions they report chain into one history.
func TestConcurrent(t *testing.T) {
	tr, clock := newTracker(t, trust.Config{})
	observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true})
	initial := tr.State()

	const workers, rounds = 8, 500
	results := make([][]trust.Assessment, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				var a trust.Assessment
				switch (w + i) % 4 {
				case 0:
					a = tr.Assess()
				case 1:
					// Swing the score across the thresholds.
					p := []float64{0.95, 0.55, 0.3, 0.1}[i%4]
					var err error
					if a, err = tr.Observe(trust.BiometricMatch{At: clock.Now(), Probability: p}); err != nil {
						t.Error(err)
						return
					}
				case 2:
					var err error
					if a, err = tr.Observe(trust.PasskeyAssertion{At: clock.Now(), UserVerified: true}); err != nil {
						t.Error(err)
						return
					}
				case 3:
					clock.Advance(time.Second)
					a = tr.Assess()
				}
				_ = a.Context()
				results[w] = append(results[w], a)
			}
		})
	}
	wg.Wait()
	final := tr.State()

	// Every change leaves one state and enters another: per state, entries
	// minus exits is 1 for the final state, -1 for the initial one.
	balance := map[trust.State]int{}
	changes := 0
	for _, rs := range results {
		for _, a := range rs {
			if a.Changed != (a.State != a.Previous) {
				t.Fatalf("Assessment{State %q, Previous %q, Changed %v}: Changed disagrees", a.State, a.Previous, a.Changed)
			}
			if a.Changed {
				changes++
				balance[a.State]++
				balance[a.Previous]--
			}
		}
	}
	want := map[trust.State]int{}
	if final != initial {
		want[final], want[initial] = 1, -1
	}
	for _, s := range []trust.State{trust.Trusted, trust.StepUp, trust.Suspended} {
		if balance[s] != want[s] {
			t.Errorf("state %q: %d more entries than exits over %d changes, want %d (initial %q, final %q)",
				s, balance[s], changes, want[s], initial, final)
		}
	}
	if changes == 0 {
		t.Errorf("no state changes in %d concurrent updates: the test does not exercise transitions", workers*rounds)
	}
}
