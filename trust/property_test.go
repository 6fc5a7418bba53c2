package trust_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

// step is one moment of a generated session: the clock moves, then one
// signal arrives, stamped up to lag before the clock (out of order now and
// then, as the XR data channel delivers them).
type step struct {
	advance time.Duration
	lag     time.Duration
	signal  func(at time.Time) trust.Signal
}

func randomSteps(r *rand.Rand, n int) []step {
	steps := make([]step, n)
	for i := range steps {
		s := step{
			advance: time.Duration(r.IntN(int(3 * time.Minute))),
			lag:     time.Duration(r.IntN(int(20 * time.Second))),
		}
		// Fix every random choice now, so that replays see the same signal.
		uv, be, bs, att := r.IntN(4) > 0, r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(2) == 0
		p, level, live := r.Float64(), r.Float64(), r.IntN(10) > 0
		addr, sessions := r.IntN(3) == 0, r.IntN(5)
		switch r.IntN(10) {
		case 0, 1:
			s.signal = func(at time.Time) trust.Signal {
				return trust.PasskeyAssertion{At: at, UserVerified: uv, BackupEligible: be, BackedUp: be && bs, Attested: att}
			}
		case 2, 3, 4:
			s.signal = func(at time.Time) trust.Signal { return trust.BiometricMatch{At: at, Probability: p} }
		case 5:
			s.signal = func(at time.Time) trust.Signal { return trust.Liveness{At: at, Live: live, Reason: "replay"} }
		case 6:
			s.signal = func(at time.Time) trust.Signal { return trust.DeviceAssurance{At: at, Level: level} }
		case 7, 8:
			s.signal = func(at time.Time) trust.Signal {
				return trust.ContextChange{At: at, AddressChanged: addr, ConcurrentSessions: sessions}
			}
		case 9:
			if r.IntN(4) == 0 {
				s.signal = func(at time.Time) trust.Signal { return trust.CredentialCloned{At: at, Credential: "cred-X"} }
			} else {
				s.signal = func(at time.Time) trust.Signal { return trust.Liveness{At: at, Live: true} }
			}
		}
		steps[i] = s
	}
	return steps
}

// replay runs steps on a new tracker and returns every assessment; check,
// if not nil, sees each one with the state before it.
func replay(t *testing.T, cfg trust.Config, steps []step, check func(prev trust.State, a trust.Assessment)) []trust.Assessment {
	t.Helper()
	tr, clock := newTracker(t, cfg)
	prev := tr.State()
	out := make([]trust.Assessment, 0, len(steps))
	for _, s := range steps {
		clock.Advance(s.advance)
		a := observe(t, tr, s.signal(clock.Now().Add(-s.lag)))
		if check != nil {
			check(prev, a)
		}
		prev = a.State
		out = append(out, a)
	}
	return out
}

func TestRandomSessionsKeepInvariants(t *testing.T) {
	e, _ := trust.New(trust.Config{})
	cfg := e.Config()
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 1))
		steps := randomSteps(r, 60)
		replay(t, trust.Config{}, steps, func(prev trust.State, a trust.Assessment) {
			names := factorNames(a)
			hard := slices.Contains(names, "liveness") || slices.Contains(names, "credential-cloned")
			switch {
			case a.Score < 0 || a.Score > 1:
				t.Fatalf("seed %d: Score = %v, want in [0, 1]", seed, a.Score)
			case a.Previous != prev || a.Changed != (a.State != prev):
				t.Fatalf("seed %d: {Previous %q, Changed %v, State %q} after state %q", seed, a.Previous, a.Changed, a.State, prev)
			case !a.BiometricLive && a.Score > cfg.NoBiometricCap:
				t.Fatalf("seed %d: Score = %v without a live stream, want <= %v", seed, a.Score, cfg.NoBiometricCap)
			case a.BiometricLive && a.Score > a.Biometric:
				t.Fatalf("seed %d: Score = %v above the match %v", seed, a.Score, a.Biometric)
			case hard && (a.State != trust.Suspended || a.Score != 0):
				t.Fatalf("seed %d: hard signal holds but {State %q, Score %v}", seed, a.State, a.Score)
			case a.State == trust.Trusted && a.Score < cfg.LeaveTrusted:
				t.Fatalf("seed %d: trusted at score %v < LeaveTrusted", seed, a.Score)
			case a.State == trust.StepUp && a.PasskeyAge >= 0 && a.Score >= cfg.EnterTrusted:
				t.Fatalf("seed %d: step-up at score %v >= EnterTrusted after sign-in", seed, a.Score)
			case a.State == trust.Trusted && a.PasskeyAge < 0:
				t.Fatalf("seed %d: trusted without any user-verified assertion", seed)
			case a.Explain() == "":
				t.Fatalf("seed %d: empty Explain()", seed)
			}
		})
	}
}

// TestBetterEvidenceNeverLowersTheScore replays random sessions twice, the
// second time with one signal improved or one better signal appended, and
// checks that the score is never lower for it.
func TestBetterEvidenceNeverLowersTheScore(t *testing.T) {
	improvements := []struct {
		name    string
		improve func(s trust.Signal) trust.Signal // nil result: nothing to improve
	}{
		{"user verification", func(s trust.Signal) trust.Signal {
			if a, ok := s.(trust.PasskeyAssertion); ok && !a.UserVerified {
				a.UserVerified = true
				return a
			}
			return nil
		}},
		{"higher match", func(s trust.Signal) trust.Signal {
			if b, ok := s.(trust.BiometricMatch); ok && b.Probability < 1 {
				b.Probability += (1 - b.Probability) / 2
				return b
			}
			return nil
		}},
		{"more assured device", func(s trust.Signal) trust.Signal {
			if d, ok := s.(trust.DeviceAssurance); ok && d.Level < 1 {
				d.Level += (1 - d.Level) / 2
				return d
			}
			return nil
		}},
		{"passed liveness", func(s trust.Signal) trust.Signal {
			if l, ok := s.(trust.Liveness); ok && !l.Live {
				l.Live = true
				return l
			}
			return nil
		}},
		{"no clone", func(s trust.Signal) trust.Signal {
			if c, ok := s.(trust.CredentialCloned); ok {
				return trust.Liveness{At: c.At, Live: true}
			}
			return nil
		}},
		{"same address", func(s trust.Signal) trust.Signal {
			if c, ok := s.(trust.ContextChange); ok && c.AddressChanged {
				c.AddressChanged = false
				return c
			}
			return nil
		}},
		{"fewer sessions", func(s trust.Signal) trust.Signal {
			if c, ok := s.(trust.ContextChange); ok && c.ConcurrentSessions > 1 {
				c.ConcurrentSessions--
				return c
			}
			return nil
		}},
	}
	always := func(trust.Assessment) bool { return true }
	appended := []struct {
		name   string
		signal func(at time.Time) trust.Signal
		better func(before trust.Assessment) bool // whether the signal is better evidence than what the session had
	}{
		{"fresh best assertion", func(at time.Time) trust.Signal {
			return trust.PasskeyAssertion{At: at, UserVerified: true, Attested: true}
		}, always},
		{"perfect match", func(at time.Time) trust.Signal { return trust.BiometricMatch{At: at, Probability: 1} }, always},
		{"match at the cap, after no stream", func(at time.Time) trust.Signal {
			return trust.BiometricMatch{At: at, Probability: trust.DefaultNoBiometricCap}
		}, func(a trust.Assessment) bool { return !a.BiometricLive }},
		{"perfect device", func(at time.Time) trust.Signal { return trust.DeviceAssurance{At: at, Level: 1} }, always},
		{"one session", func(at time.Time) trust.Signal { return trust.ContextChange{At: at, ConcurrentSessions: 1} }, always},
	}

	compared := 0
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 2))
		steps := randomSteps(r, 40)
		base := replay(t, trust.Config{}, steps, nil)
		final := base[len(base)-1].Score

		for _, imp := range improvements {
			for i, s := range steps {
				better := imp.improve(s.signal(t0))
				if better == nil {
					continue
				}
				variant := slices.Clone(steps)
				variant[i].signal = func(at time.Time) trust.Signal {
					return imp.improve(s.signal(at))
				}
				got := replay(t, trust.Config{}, variant, nil)
				compared++
				if g := got[len(got)-1].Score; g < final-1e-12 {
					t.Fatalf("seed %d, %s at step %d: score %v, below %v without it", seed, imp.name, i, g, final)
				}
			}
		}
		for _, app := range appended {
			if !app.better(base[len(base)-1]) {
				continue
			}
			variant := append(slices.Clone(steps), step{signal: app.signal})
			got := replay(t, trust.Config{}, variant, nil)
			compared++
			if g := got[len(got)-1].Score; g < final-1e-12 {
				t.Fatalf("seed %d, appended %s: score %v, below %v without it", seed, app.name, g, final)
			}
		}
	}
	if compared < 1000 {
		t.Fatalf("only %d comparisons: the generator no longer produces the signals this test improves", compared)
	}
}

func ExampleAssessment_Explain() {
	clock := trust.NewManualClock(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	engine, err := trust.New(trust.Config{Clock: clock})
	if err != nil {
		panic(err)
	}
	session := engine.NewTracker()
	// The sign-in that created the session, then the headset's stream.
	_, _ = session.Observe(trust.PasskeyAssertion{At: clock.Now(), UserVerified: true, Attested: true})
	_, _ = session.Observe(trust.BiometricMatch{At: clock.Now(), Probability: 0.92})

	clock.Advance(20 * time.Minute)
	_, _ = session.Observe(trust.BiometricMatch{At: clock.Now(), Probability: 0.92})
	a := session.Assess()
	fmt.Println(a.Explain())
	fmt.Println(a.Context()["passkey_age_s"])
	// Output:
	// Trusted, score 0.67. Trusted down to 0.50, but below the 0.80 that high-risk actions need. Factors: user-verified passkey 20m ago (half-life 15m); motion matches the enrolled person with probability 0.92 (0s ago); device assurance 1.00 from the passkey's flags (attested, device-bound).
	// 1200
}
