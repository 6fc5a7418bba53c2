// Package identity is who a request acts for: the passkey ceremonies
// (registration, sign-in, step-up) and the sessions they start, the
// avatar's own view of itself and of its passkeys and sessions, the
// administrators' role API with the bootstrap of the first administrator,
// and the step-up proofs that bind a fresh passkey assertion to one action.
//
// It owns the ceremony limits of a node (a rate per client address and a
// cap on ceremonies in progress) and the step-up proofs ("stepups" bucket).
// Everything else comes in through Deps as small interfaces: the avatar
// directory and the session manager (package avatar), the trust tracker
// and the audit log of the realm, and a notice to an avatar's other
// sessions. Other parts spend step-up proofs through StepUps.Consume,
// which the realm hands them as their own one-method interface.
//
// It imports the domain packages and realm/internal/edge, never the realm
// nor another part of it.
package identity
