package trust_test

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

// FuzzObserve feeds signals with arbitrary values and times, as a realm
// might pass them on from a client's stream: a signal is either accepted
// and keeps the score in [0, 1], or refused with ErrInvalidSignal and
// changes nothing. It never panics.
func FuzzObserve(f *testing.F) {
	f.Add(uint8(0), 0.0, int64(0), true, false, false, true, 1, "cred-A")
	f.Add(uint8(1), 0.93, int64(-2e9), false, false, false, false, 0, "")
	f.Add(uint8(1), math.NaN(), int64(0), false, false, false, false, 0, "")
	f.Add(uint8(1), 1.5, int64(0), false, false, false, false, 0, "")
	f.Add(uint8(2), 0.0, int64(-1e9), false, false, false, false, 0, "replay")
	f.Add(uint8(3), math.Inf(-1), int64(0), false, false, false, false, 0, "")
	f.Add(uint8(4), 0.0, int64(3e9), true, false, false, false, 4, "")
	f.Add(uint8(4), 0.0, int64(0), false, false, false, false, -3, "")
	f.Add(uint8(5), 0.0, int64(math.MinInt64), false, false, false, false, 0, "cred-A")
	f.Add(uint8(0), 0.0, int64(math.MaxInt64), true, true, true, true, 0, "cred-A")
	f.Fuzz(func(t *testing.T, kind uint8, value float64, offset int64, b1, b2, b3, b4 bool, n int, text string) {
		tr, clock := newTracker(t, trust.Config{})
		observe(t, tr, trust.PasskeyAssertion{At: t0, UserVerified: true, Credential: "cred-A"})
		observe(t, tr, trust.BiometricMatch{At: t0, Probability: 0.9})
		clock.Advance(time.Minute)

		at := clock.Now().Add(time.Duration(offset))
		if offset == math.MinInt64 {
			at = time.Time{}
		}
		var s trust.Signal
		switch kind % 6 {
		case 0:
			s = trust.PasskeyAssertion{At: at, UserVerified: b1, BackupEligible: b2, BackedUp: b3, Attested: b4, Credential: text}
		case 1:
			s = trust.BiometricMatch{At: at, Probability: value}
		case 2:
			s = trust.Liveness{At: at, Live: b1, Reason: text}
		case 3:
			s = trust.DeviceAssurance{At: at, Level: value}
		case 4:
			s = trust.ContextChange{At: at, AddressChanged: b1, ConcurrentSessions: n}
		case 5:
			s = trust.CredentialCloned{At: at, Credential: text}
		}

		before := tr.Assess()
		a, err := tr.Observe(s)
		if err != nil {
			if !errors.Is(err, trust.ErrInvalidSignal) && !errors.Is(err, trust.ErrClonedCredential) {
				t.Fatalf("Observe(%#v) = %v, want ErrInvalidSignal or ErrClonedCredential", s, err)
			}
			after := tr.Assess()
			if after.Score != before.Score || after.State != before.State || !reflect.DeepEqual(after.Factors(), before.Factors()) {
				t.Fatalf("refused %#v changed the tracker: %s -> %s", s, before.Explain(), after.Explain())
			}
			return
		}
		if a.Score < 0 || a.Score > 1 || math.IsNaN(a.Score) {
			t.Fatalf("Observe(%#v): Score = %v, want in [0, 1]", s, a.Score)
		}
		if a.Explain() == "" || len(a.Context()) != 5 {
			t.Fatalf("Observe(%#v): empty Explain or Context", s)
		}
	})
}
