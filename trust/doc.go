// Package trust is the score-based half of the policy engine: it combines
// biometric match, passkey freshness, device assurance and context into a
// trust score and a state (trusted, step-up, suspended), with an injectable
// clock because the score decays with time.
//
// The criteria-based half is the policy package; trust only produces the
// signals that Cedar policies read from a request's context.
package trust
