package trust

import (
	"math"
	"slices"
	"sync"
	"time"
)

// State is what a session may do, as Cedar policies read it.
type State string

// The states of a session.
const (
	// Trusted: the evidence is good enough for everything but what a
	// policy reserves for a higher score or a fresh step-up.
	Trusted State = "trusted"
	// StepUp: the session lives on, but must re-assert its passkey (with
	// user verification) before it is trusted again.
	StepUp State = "step-up"
	// Suspended: the evidence turned against the session; policies refuse
	// it everything until the person proves presence again.
	Suspended State = "suspended"
)

// Weights of the evidence in the score. The passkey weighs most because it
// is the only factor the person actively proves; the biometric match is
// continuous but probabilistic; device assurance says how much a passkey
// assertion from that device is worth, so it weighs least.
const (
	passkeyWeight   = 0.5
	biometricWeight = 0.3
	deviceWeight    = 0.2
)

// nonUVCredit is what an assertion without user verification is worth
// relative to a user-verified one: it proves the authenticator is present,
// not that its owner is.
const nonUVCredit = 0.5

// Context penalties, subtracted from the score. A changed address is what a
// stolen session token looks like from the server, until the person
// re-asserts; several concurrent sessions of one person are rare enough to
// cost a little each, but are not by themselves an attack.
const (
	addressChangePenalty = 0.2
	sessionPenalty       = 0.1
	maxSessionPenalty    = 0.3
)

// neverAgeSeconds stands for "never verified" in the Cedar context: larger
// than any freshness window a policy could ask for, and still a Long.
const neverAgeSeconds = int64(1) << 31

// Tracker follows the trust of one session. Create it with
// Engine.NewTracker; it is safe for concurrent use.
type Tracker struct {
	cfg *Config

	mu    sync.Mutex
	ev    evidence
	state State
	// liftAfter, while suspended: a user-verified assertion made after this
	// time may end the suspension.
	liftAfter time.Time
}

// evidence is the newest of every kind of signal; a signal older than the
// one held of its kind arrives out of order (the XR data channel is
// unordered) and is dropped.
type evidence struct {
	uvAt    time.Time // last user-verified assertion
	nonUVAt time.Time // last assertion without user verification

	bioAt time.Time
	bio   float64

	devAt        time.Time
	dev          float64
	devFromFlags bool
	devFlags     PasskeyAssertion // the assertion whose flags gave dev, when devFromFlags

	livenessAt     time.Time // last failed liveness check
	livenessReason string

	clonedAt         time.Time // last clone report
	clonedCredential string
	cloned           []string // every credential reported cloned

	addressAt time.Time // last address change

	sessionsAt time.Time
	sessions   int
}

// Observe adds s to the session's evidence and assesses the session at the
// clock's current time. An invalid signal returns an error wrapping
// ErrInvalidSignal (or ErrClonedCredential) and a zero Assessment, and
// changes nothing.
func (t *Tracker) Observe(s Signal) (Assessment, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Clock.Now()
	if err := validate(s, now, t.cfg.MaxSkew); err != nil {
		return Assessment{}, err
	}
	if a, ok := s.(PasskeyAssertion); ok && a.Credential != "" && slices.Contains(t.ev.cloned, a.Credential) {
		return Assessment{}, &SignalError{Kind: "passkey", Reason: "credential " + a.Credential + " was reported cloned", Err: ErrClonedCredential}
	}
	t.ev.apply(s)
	return t.assess(now), nil
}

// Assess assesses the session at the clock's current time. Time alone moves
// the score (the passkey factor decays, a biometric reading goes stale), so
// Assess may change the state; Changed says whether it did.
func (t *Tracker) Assess() Assessment {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.assess(t.cfg.Clock.Now())
}

// State returns the state of the last assessment without assessing again.
func (t *Tracker) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

func (e *evidence) apply(s Signal) {
	switch s := s.(type) {
	case PasskeyAssertion:
		if s.UserVerified {
			e.uvAt = latest(e.uvAt, s.At)
		} else {
			e.nonUVAt = latest(e.nonUVAt, s.At)
		}
		// A DeviceAssurance at the same instant refines this assertion's
		// device, so flags replace only strictly older device evidence.
		if s.At.After(e.devAt) {
			e.devAt, e.dev, e.devFromFlags, e.devFlags = s.At, s.DeviceLevel(), true, s
		}
	case BiometricMatch:
		if !s.At.Before(e.bioAt) {
			e.bioAt, e.bio = s.At, s.Probability
		}
	case Liveness:
		if !s.Live && !s.At.Before(e.livenessAt) {
			e.livenessAt, e.livenessReason = s.At, s.Reason
		}
	case DeviceAssurance:
		if !s.At.Before(e.devAt) {
			e.devAt, e.dev, e.devFromFlags, e.devFlags = s.At, s.Level, false, PasskeyAssertion{}
		}
	case ContextChange:
		if s.AddressChanged {
			e.addressAt = latest(e.addressAt, s.At)
		}
		if s.ConcurrentSessions > 0 && !s.At.Before(e.sessionsAt) {
			e.sessionsAt, e.sessions = s.At, s.ConcurrentSessions
		}
	case CredentialCloned:
		if !s.At.Before(e.clonedAt) {
			e.clonedAt, e.clonedCredential = s.At, s.Credential
		}
		if s.Credential != "" && !slices.Contains(e.cloned, s.Credential) {
			e.cloned = append(e.cloned, s.Credential)
		}
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// holds reports whether a hard signal at time at still holds: until a
// user-verified assertion made after it.
func (e *evidence) holds(at time.Time) bool {
	return !at.IsZero() && !e.uvAt.After(at)
}

// assess scores the evidence at now and moves the state machine.
func (t *Tracker) assess(now time.Time) Assessment {
	a := t.ev.score(t.cfg, now)
	a.Previous = t.state
	a.State = t.next(&a)
	a.Changed = a.State != a.Previous
	t.state = a.State
	return a
}

// score computes everything about the evidence at now except the state.
//
// With a live biometric stream:
//
//	score = min(b, 0.5·p + 0.3·b + 0.2·d) − penalties
//
// The weighted sum lets each factor make up for another's weakness, but the
// score never exceeds the probability that the wearer is the enrolled
// person: a fresh passkey does not vouch for whoever took the headset after
// it was asserted.
//
// Without one (no reading, or the last one older than BiometricMaxAge):
//
//	score = min(NoBiometricCap, (0.5·p + 0.2·d) / 0.7) − penalties
//
// The passkey and the device share the biometric's weight, so a desktop
// console is not punished for lacking a headset, but the cap plays the part
// of the missing match probability: no evidence about the wearer means the
// score stays below what high-risk actions need. A live reading at or above
// the cap therefore never scores lower than no stream.
//
// Every term is non-decreasing in its evidence (a fresher passkey, a higher
// match, a more assured device, fewer penalties), so more or better evidence
// of one kind never lowers the score. A hard signal that holds sets the
// score to 0.
func (e *evidence) score(cfg *Config, now time.Time) Assessment {
	a := Assessment{At: now, PasskeyAge: -1, cfg: cfg}
	w := &a.why

	if !e.uvAt.IsZero() {
		a.PasskeyAge = max(0, now.Sub(e.uvAt))
		w.passkey = decay(a.PasskeyAge, cfg.PasskeyHalfLife)
		w.passkeyUV = true
	}
	if !e.nonUVAt.IsZero() {
		age := max(0, now.Sub(e.nonUVAt))
		if p := nonUVCredit * decay(age, cfg.PasskeyHalfLife); p > w.passkey {
			w.passkey, w.passkeyUV, w.nonUVAge = p, false, age
		}
	}

	w.biometricAge = -1
	if !e.bioAt.IsZero() {
		w.biometricAge = max(0, now.Sub(e.bioAt))
		a.BiometricLive = w.biometricAge <= cfg.BiometricMaxAge
	}
	if !e.devAt.IsZero() {
		a.DeviceAssurance = e.dev
		w.deviceAge = max(0, now.Sub(e.devAt))
		w.deviceFromFlags, w.deviceFlags = e.devFromFlags, e.devFlags
		w.deviceKnown = true
	}

	if a.BiometricLive {
		a.Biometric = e.bio
		w.raw = passkeyWeight*w.passkey + biometricWeight*e.bio + deviceWeight*a.DeviceAssurance
		w.ceiling = e.bio
	} else {
		w.raw = (passkeyWeight*w.passkey + deviceWeight*a.DeviceAssurance) / (passkeyWeight + deviceWeight)
		w.ceiling = cfg.NoBiometricCap
	}
	score := w.raw
	if score > w.ceiling {
		score, w.capped = w.ceiling, true
	}

	if e.addressAt.After(e.uvAt) {
		w.addressPenalty = addressChangePenalty
		w.addressAge = max(0, now.Sub(e.addressAt))
	}
	if e.sessions > 1 {
		w.sessions = e.sessions
		w.sessionPenalty = min(maxSessionPenalty, sessionPenalty*float64(e.sessions-1))
	}
	score -= w.addressPenalty + w.sessionPenalty

	if e.holds(e.livenessAt) {
		w.livenessFailed, w.livenessReason, w.livenessAge = true, e.livenessReason, max(0, now.Sub(e.livenessAt))
		w.holdAt = latest(w.holdAt, e.livenessAt)
	}
	if e.holds(e.clonedAt) {
		w.cloned, w.clonedCredential, w.clonedAge = true, e.clonedCredential, max(0, now.Sub(e.clonedAt))
		w.holdAt = latest(w.holdAt, e.clonedAt)
	}
	if !w.holdAt.IsZero() {
		score = 0
	}
	a.Score = min(1, max(0, score))
	return a
}

// decay is 2^(−age/halfLife): 1 when fresh, ½ after one half-life.
func decay(age, halfLife time.Duration) float64 {
	return math.Exp2(-float64(age) / float64(halfLife))
}

// next is the state machine. Hysteresis lives here: trusted is entered at
// EnterTrusted but left only below LeaveTrusted, and suspended is entered
// below EnterSuspended but left only on a new user-verified assertion.
func (t *Tracker) next(a *Assessment) State {
	cfg, w, uvAt := t.cfg, &a.why, t.ev.uvAt
	switch {
	case !w.holdAt.IsZero():
		t.liftAfter = latest(t.liftAfter, w.holdAt)
		return Suspended
	case t.state == Suspended:
		w.armed = uvAt.After(t.liftAfter)
		if !w.armed || a.Score < cfg.LeaveSuspended {
			w.awaiting = true
			return Suspended
		}
		if a.Score >= cfg.EnterTrusted {
			return Trusted
		}
		return StepUp
	case uvAt.IsZero():
		// The session has not signed in with user verification yet: there
		// is no trust to lose, so it waits in step-up for its sign-in.
		w.neverVerified = true
		return StepUp
	case a.Score < cfg.EnterSuspended:
		t.liftAfter = uvAt
		w.awaiting = true
		return Suspended
	case t.state == Trusted && a.Score >= cfg.LeaveTrusted:
		return Trusted
	case a.Score >= cfg.EnterTrusted:
		return Trusted
	default:
		return StepUp
	}
}
