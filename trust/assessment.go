package trust

import (
	"fmt"
	"strings"
	"time"
)

// Assessment is the trust of a session at one instant. It is a value: it
// does not change when the tracker moves on.
type Assessment struct {
	At       time.Time
	Score    float64 // 0..1
	State    State
	Previous State // the state before this assessment
	Changed  bool  // State != Previous

	// PasskeyAge is the time since the last user-verified assertion, -1 if
	// there was none.
	PasskeyAge time.Duration
	// Biometric is the live match probability, 0 when BiometricLive is
	// false (no reading, or the last one is older than BiometricMaxAge).
	Biometric     float64
	BiometricLive bool
	// DeviceAssurance is 0..1, 0 when nothing is known of the device.
	DeviceAssurance float64

	cfg *Config
	why why
}

// why keeps what the score was made of, so that Factors and Explain can be
// written only when someone asks: Observe and Assess then never allocate.
type why struct {
	passkey   float64
	passkeyUV bool          // passkey comes from a user-verified assertion
	nonUVAge  time.Duration // age of the assertion without user verification, when !passkeyUV and passkey > 0

	biometricAge time.Duration // of the newest reading, -1 if none

	deviceKnown     bool
	deviceFromFlags bool
	deviceFlags     PasskeyAssertion
	deviceAge       time.Duration

	raw, ceiling float64
	capped       bool

	addressPenalty float64
	addressAge     time.Duration
	sessions       int
	sessionPenalty float64

	holdAt           time.Time
	livenessFailed   bool
	livenessReason   string
	livenessAge      time.Duration
	cloned           bool
	clonedCredential string
	clonedAge        time.Duration

	neverVerified bool // step-up only because no user-verified assertion was seen
	awaiting      bool // suspended by the score, not by a hard signal that holds
	armed         bool // suspended, and a user-verified assertion made after the suspension is on record
}

// Factor is one term that shaped the score, explained for a person. Value
// is the evidence's own value in 0..1 for passkey, biometric and device; the
// cap that bound the score for cap; the (negative) amount taken off for a
// penalty; 0 for a hard signal, which holds the score at 0.
type Factor struct {
	Name   string // passkey, biometric, device, cap, address-change, concurrent-sessions, liveness, credential-cloned
	Value  float64
	Effect string
}

// Factors lists every factor that shaped the score, always in the order of
// Factor.Name's list: the three kinds of evidence first, then whatever
// capped, lowered or overrode them.
func (a Assessment) Factors() []Factor {
	if a.cfg == nil {
		return nil
	}
	w, cfg := &a.why, a.cfg
	halfLife := "half-life " + duration(cfg.PasskeyHalfLife)
	factors := make([]Factor, 0, 8)

	switch {
	case w.passkey > 0 && w.passkeyUV:
		factors = append(factors, Factor{"passkey", w.passkey,
			fmt.Sprintf("user-verified passkey %s ago (%s)", duration(a.PasskeyAge), halfLife)})
	case w.passkey > 0:
		factors = append(factors, Factor{"passkey", w.passkey,
			fmt.Sprintf("passkey without user verification %s ago, counted at half (%s)", duration(w.nonUVAge), halfLife)})
	default:
		factors = append(factors, Factor{"passkey", 0, "no passkey assertion yet"})
	}

	switch {
	case a.BiometricLive:
		factors = append(factors, Factor{"biometric", a.Biometric,
			fmt.Sprintf("motion matches the enrolled person with probability %.2f (%s ago)", a.Biometric, duration(w.biometricAge))})
	case w.biometricAge >= 0:
		factors = append(factors, Factor{"biometric", 0,
			fmt.Sprintf("no live biometric stream: the last reading is %s old (limit %s)", duration(w.biometricAge), duration(cfg.BiometricMaxAge))})
	default:
		factors = append(factors, Factor{"biometric", 0, "no biometric stream"})
	}

	switch {
	case !w.deviceKnown:
		factors = append(factors, Factor{"device", 0, "nothing known of the device"})
	case w.deviceFromFlags:
		factors = append(factors, Factor{"device", a.DeviceAssurance,
			fmt.Sprintf("device assurance %.2f from the passkey's flags (%s)", a.DeviceAssurance, flagWords(w.deviceFlags))})
	default:
		factors = append(factors, Factor{"device", a.DeviceAssurance,
			fmt.Sprintf("device assurance %.2f reported %s ago", a.DeviceAssurance, duration(w.deviceAge))})
	}

	if w.capped {
		effect := fmt.Sprintf("score capped at %.2f, the biometric match: the score never exceeds the probability that the wearer is the enrolled person", w.ceiling)
		if !a.BiometricLive {
			effect = fmt.Sprintf("score capped at %.2f without a live biometric stream (high-risk actions need %.2f)", w.ceiling, cfg.HighRisk)
		}
		factors = append(factors, Factor{"cap", w.ceiling, effect})
	}
	if w.addressPenalty > 0 {
		factors = append(factors, Factor{"address-change", -w.addressPenalty,
			fmt.Sprintf("network address changed %s ago, after the last user-verified assertion: -%.2f", duration(w.addressAge), w.addressPenalty)})
	}
	if w.sessionPenalty > 0 {
		factors = append(factors, Factor{"concurrent-sessions", -w.sessionPenalty,
			fmt.Sprintf("%d concurrent sessions: -%.2f", w.sessions, w.sessionPenalty)})
	}
	if w.livenessFailed {
		factors = append(factors, Factor{"liveness", 0,
			fmt.Sprintf("liveness check failed %s ago (%s): score held at 0", duration(w.livenessAge), orUnknown(w.livenessReason))})
	}
	if w.cloned {
		factors = append(factors, Factor{"credential-cloned", 0,
			fmt.Sprintf("credential %s reported cloned %s ago: score held at 0", orUnknown(w.clonedCredential), duration(w.clonedAge))})
	}
	return factors
}

// Context returns the context.trust record of a Cedar request, with the
// key names and value types the scene policies are written against: state
// (string), score, biometric and device_assurance (float64, decimals to
// Cedar), passkey_age_s (int64, whole seconds; 1<<31 when there never was a
// user-verified assertion). biometric is 0 without a live stream, and
// Factors says which.
func (a Assessment) Context() map[string]any {
	age := neverAgeSeconds
	if a.PasskeyAge >= 0 {
		age = int64(a.PasskeyAge / time.Second)
	}
	return map[string]any{
		"state":            string(a.State),
		"score":            a.Score,
		"biometric":        a.Biometric,
		"passkey_age_s":    age,
		"device_assurance": a.DeviceAssurance,
	}
}

// Explain is one paragraph for a person: the state, the score, what decided
// them and every factor.
func (a Assessment) Explain() string {
	if a.cfg == nil {
		return "No assessment."
	}
	w, cfg := &a.why, a.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "%s, score %.2f", capitalize(string(a.State)), a.Score)
	if a.Changed {
		fmt.Fprintf(&b, " (was %s)", a.Previous)
	}
	b.WriteString(". ")

	switch {
	case w.livenessFailed || w.cloned:
		if w.livenessFailed {
			fmt.Fprintf(&b, "A liveness check failed (%s): the motion was replayed or impossible. ", orUnknown(w.livenessReason))
		}
		if w.cloned {
			fmt.Fprintf(&b, "Credential %s was reported cloned: its signature counter went backwards. ", orUnknown(w.clonedCredential))
		}
		b.WriteString("That is an attack signal: the session is suspended until a user-verified passkey assertion made after it. ")
	case a.State == Suspended && w.armed:
		fmt.Fprintf(&b, "A user-verified passkey assertion was made after the suspension; the score must still reach %.2f to leave it. ", cfg.LeaveSuspended)
	case a.State == Suspended:
		fmt.Fprintf(&b, "The score fell below %.2f; only a new user-verified passkey assertion, with a score of at least %.2f, ends the suspension. ", cfg.EnterSuspended, cfg.LeaveSuspended)
	case w.neverVerified:
		b.WriteString("No user-verified passkey assertion yet: the session waits in step-up for its sign-in. ")
	case a.State == StepUp && w.capped && a.BiometricLive && w.ceiling < cfg.EnterTrusted:
		fmt.Fprintf(&b, "The biometric match caps the score below the %.2f needed to be trusted again: a passkey assertion cannot lift it until the motion matches the enrolled person better. ", cfg.EnterTrusted)
	case a.State == StepUp:
		fmt.Fprintf(&b, "Trusted again at %.2f: a user-verified passkey assertion restores the passkey factor. ", cfg.EnterTrusted)
	case a.Score >= cfg.HighRisk:
		fmt.Fprintf(&b, "Trusted down to %.2f, and enough for high-risk actions (%.2f). ", cfg.LeaveTrusted, cfg.HighRisk)
	default:
		fmt.Fprintf(&b, "Trusted down to %.2f, but below the %.2f that high-risk actions need. ", cfg.LeaveTrusted, cfg.HighRisk)
	}

	b.WriteString("Factors: ")
	for i, f := range a.Factors() {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Effect)
	}
	b.WriteString(".")
	return b.String()
}

func flagWords(a PasskeyAssertion) string {
	attested := "not attested"
	if a.Attested {
		attested = "attested"
	}
	backup := "device-bound"
	switch {
	case a.BackedUp:
		backup = "synced"
	case a.BackupEligible:
		backup = "syncable, not yet synced"
	}
	return attested + ", " + backup
}

// duration writes d to the second without zero units: 15m, 1h, 7m30s.
func duration(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Second {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
