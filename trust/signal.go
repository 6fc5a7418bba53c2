package trust

import (
	"errors"
	"fmt"
	"time"
)

// Signal is one piece of evidence about a session. The set is closed: only
// the types of this package implement it, because the tracker must know how
// each kind moves the score.
type Signal interface {
	signalTime() time.Time
}

// PasskeyAssertion is a verified WebAuthn assertion of the session's avatar.
type PasskeyAssertion struct {
	At time.Time
	// UserVerified: the authenticator checked the person (PIN, biometric),
	// not only their presence. Only such an assertion resets the passkey
	// age, lifts a suspension and clears a context penalty; one without
	// user verification counts half and lifts nothing.
	UserVerified bool
	// BackupEligible and BackedUp are the assertion's BE and BS flags: a
	// key that may be or has been synced to other devices proves less about
	// the device in hand.
	BackupEligible, BackedUp bool
	// Attested: the credential's attestation was verified when it was
	// registered, so its authenticator's make and model are known.
	Attested bool
	// Credential is the credential id, if known. An assertion from a
	// credential this tracker was told is cloned is refused.
	Credential string
}

// BiometricMatch is the probability, over a recent window of XR motion, that
// the wearer is the avatar's enrolled person.
type BiometricMatch struct {
	At          time.Time
	Probability float64 // 0..1
}

// Liveness is the outcome of a liveness check of the XR stream. A failure
// (replayed or physically implausible motion) is an attack, so it suspends
// the session at once; a pass changes nothing, because liveness is presumed
// until a check fails.
type Liveness struct {
	At     time.Time
	Live   bool
	Reason string // why the check failed, for the person reading Explain
}

// DeviceAssurance is how far the device holding the passkey is trusted,
// from attestation, backup state and whatever else the realm knows about it.
// It replaces the level the tracker derived from an earlier assertion's
// flags.
type DeviceAssurance struct {
	At    time.Time
	Level float64 // 0..1
}

// ContextChange reports the session's network context.
type ContextChange struct {
	At time.Time
	// AddressChanged: the session's network address changed at At. It costs
	// score until the next user-verified assertion.
	AddressChanged bool
	// ConcurrentSessions is how many sessions the avatar has open at At,
	// this one included (0 if unknown). Each one beyond the first costs
	// score, since the same person rarely needs many.
	ConcurrentSessions int
}

// CredentialCloned reports that a WebAuthn signature counter went backwards:
// two authenticators hold the same key. The session is suspended at once and
// stays so until a user-verified assertion made after the report, which the
// realm must accept only from another credential.
type CredentialCloned struct {
	At         time.Time
	Credential string
}

// signalTime seals Signal. The tracker itself reads At through describe's
// type switch, which keeps signals off the heap.
func (s PasskeyAssertion) signalTime() time.Time { return s.At }
func (s BiometricMatch) signalTime() time.Time   { return s.At }
func (s Liveness) signalTime() time.Time         { return s.At }
func (s DeviceAssurance) signalTime() time.Time  { return s.At }
func (s ContextChange) signalTime() time.Time    { return s.At }
func (s CredentialCloned) signalTime() time.Time { return s.At }

// DeviceLevel is the device assurance that the assertion's flags alone
// support. Any passkey is a key that never left an authenticator (0.4); a
// verified attestation names that authenticator (+0.3); a key that cannot be
// synced is bound to the device in hand (+0.3), one that may be but is not
// yet synced half so (+0.15).
func (s PasskeyAssertion) DeviceLevel() float64 {
	level := 0.4
	if s.Attested {
		level += 0.3
	}
	switch {
	case !s.BackupEligible:
		level += 0.3
	case !s.BackedUp:
		level += 0.15
	}
	return level
}

// Errors that Observe wraps; test them with errors.Is.
var (
	// ErrInvalidSignal: the signal is malformed (a probability that is not
	// one, a zero time, a time from the future, an unknown kind). The
	// tracker is unchanged.
	ErrInvalidSignal = errors.New("trust: invalid signal")
	// ErrClonedCredential: the assertion comes from a credential reported
	// cloned to this tracker. The tracker is unchanged.
	ErrClonedCredential = errors.New("trust: assertion from a cloned credential")
)

// SignalError says which signal Observe refused and why.
type SignalError struct {
	Kind   string // "passkey", "biometric", "liveness", "device", "context", "cloned"
	Reason string
	Err    error // ErrInvalidSignal or ErrClonedCredential
}

func (e *SignalError) Error() string {
	return fmt.Sprintf("%v: %s: %s", e.Err, e.Kind, e.Reason)
}

func (e *SignalError) Unwrap() error { return e.Err }

func invalid(kind, format string, args ...any) *SignalError {
	return &SignalError{Kind: kind, Reason: fmt.Sprintf(format, args...), Err: ErrInvalidSignal}
}

// validate checks what every kind shares, then the kind's own fields.
func validate(s Signal, now time.Time, skew time.Duration) error {
	kind, at := describe(s)
	switch {
	case s == nil:
		return invalid("unknown", "nil signal")
	case kind == "":
		// The type is not named: formatting it would make every signal
		// escape to the heap, and Observe must not allocate.
		return invalid("unknown", "unsupported signal type: pass one of the trust signal structs by value")
	case at.IsZero():
		return invalid(kind, "zero time")
	case at.After(now.Add(skew)):
		return invalid(kind, "time %s is %v past the clock (at most %v allowed)",
			at.Format(time.RFC3339Nano), at.Sub(now), skew)
	}
	switch s := s.(type) {
	case PasskeyAssertion:
		if s.BackedUp && !s.BackupEligible {
			return invalid(kind, "backed up (BS) without backup eligibility (BE)")
		}
	case BiometricMatch:
		if !isUnit(s.Probability) {
			return invalid(kind, "probability %v is not in [0, 1]", s.Probability)
		}
	case DeviceAssurance:
		if !isUnit(s.Level) {
			return invalid(kind, "level %v is not in [0, 1]", s.Level)
		}
	case ContextChange:
		if s.ConcurrentSessions < 0 {
			return invalid(kind, "%d concurrent sessions", s.ConcurrentSessions)
		}
	}
	return nil
}

// describe names the signal's kind and reads its time with a type switch
// rather than the interface method: a dynamic call makes the compiler move
// every signal to the heap, and Observe must not allocate.
func describe(s Signal) (kind string, at time.Time) {
	switch s := s.(type) {
	case PasskeyAssertion:
		return "passkey", s.At
	case BiometricMatch:
		return "biometric", s.At
	case Liveness:
		return "liveness", s.At
	case DeviceAssurance:
		return "device", s.At
	case ContextChange:
		return "context", s.At
	case CredentialCloned:
		return "cloned", s.At
	}
	return "", time.Time{}
}

func isUnit(f float64) bool { return f >= 0 && f <= 1 } // false for NaN
