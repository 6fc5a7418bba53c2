package agents

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed reports bytes that are not a delegation, a chain or a
	// proof at all. Nothing was looked up or changed.
	ErrMalformed = errors.New("agents: malformed")

	// ErrUnauthenticated reports a well-formed token or proof that does not
	// establish an agent: a bad signature, an untrusted root, a widening
	// block, an expired or revoked delegation, a replayed or unbound proof.
	ErrUnauthenticated = errors.New("agents: not authenticated")

	// ErrForbidden reports an authenticated agent asking for what its
	// delegation does not grant: an action or resource out of scope, a
	// limit spent, a suspended agent.
	ErrForbidden = errors.New("agents: forbidden")
)

// Reason says why something was refused, in words a client can act on.
type Reason string

// The reasons of DenyError, with the sentinel each wraps.
const (
	ReasonMalformed     Reason = "malformed"         // ErrMalformed
	ReasonSignature     Reason = "bad-signature"     // ErrUnauthenticated: a block's signature does not verify
	ReasonUntrustedRoot Reason = "untrusted-root"    // ErrUnauthenticated: the root is not signed by a key this realm trusts
	ReasonBrokenChain   Reason = "broken-chain"      // ErrUnauthenticated: a block does not name the block before it
	ReasonWidens        Reason = "widens"            // ErrUnauthenticated: a block grants more than its parent
	ReasonTooDeep       Reason = "too-deep"          // ErrUnauthenticated: more blocks than MaxChainDepth
	ReasonTooLong       Reason = "lifetime-too-long" // ErrUnauthenticated: valid for more than MaxLifetime
	ReasonCritical      Reason = "critical-risk"     // ErrUnauthenticated: critical risk is never delegated
	ReasonNotYetValid   Reason = "not-yet-valid"     // ErrUnauthenticated
	ReasonExpired       Reason = "expired"           // ErrUnauthenticated
	ReasonRevoked       Reason = "revoked"           // ErrUnauthenticated: a block of the chain was revoked
	ReasonProof         Reason = "invalid-proof"     // ErrUnauthenticated: the DPoP proof is missing, malformed or bad
	ReasonProofBinding  Reason = "proof-not-bound"   // ErrUnauthenticated: the proof is for another key, token, method or URL
	ReasonProofStale    Reason = "proof-stale"       // ErrUnauthenticated: the proof's time is outside the window
	ReasonReplay        Reason = "proof-replayed"    // ErrUnauthenticated: the proof's jti was seen before
	ReasonNonce         Reason = "use-dpop-nonce"    // ErrUnauthenticated: RFC 9449 use_dpop_nonce: retry with the DPoP-Nonce the node answered
	ReasonOutOfScope    Reason = "out-of-scope"      // ErrForbidden: action or resource not granted
	ReasonOverLimit     Reason = "over-limit"        // ErrForbidden: value, daily sum or risk above the limit
	ReasonRate          Reason = "rate-limited"      // ErrForbidden: commands per minute spent
	ReasonSuspended     Reason = "agent-suspended"   // ErrForbidden: the agent's behaviour suspended it
)

// DenyError is why a token, a proof or an action was refused. Every
// refusal of this package is one, so the realm can audit and answer it
// with its reason.
type DenyError struct {
	Reason Reason
	Detail string
}

func (e *DenyError) Error() string { return fmt.Sprintf("agents: %s: %s", e.Reason, e.Detail) }

// Unwrap gives the sentinel of the reason.
func (e *DenyError) Unwrap() error {
	switch e.Reason {
	case ReasonMalformed:
		return ErrMalformed
	case ReasonOutOfScope, ReasonOverLimit, ReasonRate, ReasonSuspended:
		return ErrForbidden
	}
	return ErrUnauthenticated
}

func deny(reason Reason, format string, args ...any) error {
	return &DenyError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason of a DenyError in err's chain, "" if none.
func ReasonOf(err error) Reason {
	var d *DenyError
	if errors.As(err, &d) {
		return d.Reason
	}
	return ""
}
