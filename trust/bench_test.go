package trust_test

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

// benchTracker is a session in the middle of its life: signed in, streaming,
// with a reported device and a context.
func benchTracker(b *testing.B, clock trust.Clock) *trust.Tracker {
	b.Helper()
	e, err := trust.New(trust.Config{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	tr := e.NewTracker()
	now := clock.Now()
	for _, s := range []trust.Signal{
		trust.PasskeyAssertion{At: now.Add(-5 * time.Minute), UserVerified: true, Attested: true},
		trust.BiometricMatch{At: now, Probability: 0.93},
		trust.DeviceAssurance{At: now, Level: 0.9},
		trust.ContextChange{At: now, ConcurrentSessions: 2},
	} {
		if _, err := tr.Observe(s); err != nil {
			b.Fatal(err)
		}
	}
	return tr
}

// BenchmarkObserve is the cost of one trust update per signal kind.
func BenchmarkObserve(b *testing.B) {
	clock := trust.NewManualClock(t0)
	now := clock.Now()
	kinds := []struct {
		name   string
		signal trust.Signal
	}{
		{"passkey", trust.PasskeyAssertion{At: now, UserVerified: true, Attested: true, Credential: "cred-A"}},
		{"biometric", trust.BiometricMatch{At: now, Probability: 0.91}},
		{"liveness-ok", trust.Liveness{At: now, Live: true}},
		{"liveness-failed", trust.Liveness{At: now, Live: false, Reason: "replay"}},
		{"device", trust.DeviceAssurance{At: now, Level: 0.8}},
		{"context", trust.ContextChange{At: now, AddressChanged: true, ConcurrentSessions: 3}},
		{"cloned", trust.CredentialCloned{At: now, Credential: "cred-B"}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			tr := benchTracker(b, clock)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := tr.Observe(k.signal); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAssess(b *testing.B) {
	clocks := []struct {
		name  string
		clock trust.Clock
	}{
		{"manual-clock", trust.NewManualClock(t0)},
		{"system-clock", trust.SystemClock{}},
	}
	for _, c := range clocks {
		b.Run(c.name, func(b *testing.B) {
			tr := benchTracker(b, c.clock)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_ = tr.Assess()
			}
		})
	}
}

// BenchmarkReport is what only a reader of the assessment pays: the Cedar
// context of each request, and the explanation of a change.
func BenchmarkReport(b *testing.B) {
	a := benchTracker(b, trust.NewManualClock(t0)).Assess()
	b.Run("context", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = a.Context()
		}
	})
	b.Run("factors", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = a.Factors()
		}
	})
	b.Run("explain", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = a.Explain()
		}
	})
}

// BenchmarkObserveParallel is many sessions updated at once, one tracker
// each, as a realm node does.
func BenchmarkObserveParallel(b *testing.B) {
	clock := trust.NewManualClock(t0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		tr := benchTracker(b, clock)
		s := trust.BiometricMatch{At: clock.Now(), Probability: 0.9}
		for pb.Next() {
			if _, err := tr.Observe(s); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
