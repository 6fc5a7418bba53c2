// Package trust is the score-based half of the policy engine: it combines
// the evidence about a session (passkey freshness, biometric match, device
// assurance, network context) into a score in [0, 1] and a state (trusted,
// step-up, suspended) that Cedar policies read as context.trust. The
// criteria-based half is the policy package.
//
// # Score
//
// p is the passkey factor, 2^(−age/PasskeyHalfLife) since the last
// user-verified assertion; an assertion without user verification counts
// half, and no assertion counts 0. b is the live biometric match
// probability. d is the device assurance, from the last assertion's flags
// or from a DeviceAssurance signal, whichever is newer.
//
//	live biometric stream: score = min(b, 0.5·p + 0.3·b + 0.2·d) − penalties
//	no live stream:        score = min(NoBiometricCap, (0.5·p + 0.2·d)/0.7) − penalties
//
// The score never exceeds the match probability, because a fresh passkey
// says nothing about who wears the headset now; without a stream the cap
// takes the place of that probability, below what high-risk actions need.
// Penalties: 0.2 for a network address change since the last user-verified
// assertion, 0.1 for each concurrent session beyond the first (at most 0.3).
// Each term only grows with better evidence of its kind, so better evidence
// never lowers the score; the exception is a newer assertion from a less
// assured device, which is evidence about a different device.
//
// Two signals are attacks rather than evidence: a failed liveness check
// (replayed or impossible motion) and a cloned credential (a WebAuthn
// signature counter that went backwards). Either holds the score at 0 and
// the session suspended until a user-verified assertion made after it.
//
// # State
//
// A tracker starts in step-up and stays there until its first user-verified
// assertion, which the realm observes from the sign-in that creates the
// session. Then, with hysteresis so that a wavering score does not flap the
// state:
//
//	step-up   → trusted    score ≥ EnterTrusted
//	trusted   → step-up    score < LeaveTrusted
//	any       → suspended  score < EnterSuspended, or an attack signal
//	suspended → trusted or step-up, by score, once a user-verified
//	            assertion newer than the suspension is on record and the
//	            score is at least LeaveSuspended
//
// Signals may arrive out of order (the XR data channel is unordered): the
// newest of each kind counts and an older one is dropped, while an attack
// signal counts by its own time whenever it arrives.
//
// Time alone moves the score, so callers Assess at least as often as a
// state change must reach policies. Every Assessment carries its Factors and
// an Explain paragraph for the person affected and for the audit log;
// Observe and Assess compute them only when asked, so updates do not
// allocate.
package trust
