package twin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/zerorealm/zerorealm/internal/problem"
)

// Sentinel categories of refusal. Every [Refusal] wraps exactly one, so a
// caller maps a whole family of reasons to one answer with errors.Is.
var (
	// ErrInvalidCommand: the command is malformed (bad JSON, unknown op,
	// a value that is not a finite number, an oversized payload).
	ErrInvalidCommand = errors.New("twin: invalid command")
	// ErrUnknownTwin: the twin or actuator does not exist.
	ErrUnknownTwin = errors.New("twin: unknown twin or actuator")
	// ErrEnvelope: the value is outside the actuator's range, or moving to
	// it would take longer at the actuator's maximum rate than one command
	// may ask for.
	ErrEnvelope = errors.New("twin: outside the actuator's envelope")
	// ErrRateLimited: the operator or the actuator has had too many
	// commands in a short time.
	ErrRateLimited = errors.New("twin: too many commands")
	// ErrGatewayRefused: the gateway verified the grant and refused it; the
	// Refusal's Reason says why. Nothing moved.
	ErrGatewayRefused = errors.New("twin: the gateway refused the grant")
	// ErrNoGateway: no gateway answered for the twin in time. Whether the
	// actuator moved is unknown only if the gateway answered after the
	// timeout, which the grant's short expiry bounds.
	ErrNoGateway = errors.New("twin: no gateway answered")
	// ErrInvalidGrant: a grant, acknowledgement or notice failed to decode
	// or verify.
	ErrInvalidGrant = errors.New("twin: invalid signed message")
)

// Reason is a stable, machine-readable code for why something was refused.
// The realm's audit log and problem details carry it, and gateways answer
// with it in their signed acknowledgements.
type Reason string

// Reasons the realm gives before any grant is signed.
const (
	ReasonMalformed       Reason = "malformed"
	ReasonUnknownTwin     Reason = "unknown_twin"
	ReasonUnknownActuator Reason = "unknown_actuator"
	ReasonNotFinite       Reason = "not_finite"
	ReasonOutOfRange      Reason = "out_of_range"
	ReasonRateOfChange    Reason = "rate_of_change"
	ReasonOperatorRate    Reason = "operator_rate_limited"
	ReasonActuatorRate    Reason = "actuator_rate_limited"
)

// Reasons a gateway gives when it refuses a grant.
const (
	ReasonBadSignature   Reason = "bad_signature"
	ReasonUntrustedKey   Reason = "untrusted_key"
	ReasonExpired        Reason = "expired"
	ReasonNotYetValid    Reason = "not_yet_valid"
	ReasonTooLong        Reason = "lifetime_too_long"
	ReasonReplayed       Reason = "replayed"
	ReasonForeignTwin    Reason = "foreign_twin"
	ReasonSessionRevoked Reason = "session_revoked"
	// ReasonDelegationRevoked: an agent's grant names a delegation, an
	// agent or an owner the revocation feed says is revoked.
	ReasonDelegationRevoked Reason = "delegation_revoked"
	ReasonFeedStale         Reason = "revocation_feed_stale"
	ReasonEmergencyStop     Reason = "emergency_stop"
	ReasonMissingApproval   Reason = "missing_approval"
	ReasonDriverFailed      Reason = "driver_failed"
	// ReasonInProgress: another grant of the same command is being
	// carried out now; the command runs at most once.
	ReasonInProgress Reason = "command_in_progress"
	// ReasonJournalFailed: the gateway could not record the grant in its
	// journal before acting on it, so it did not act.
	ReasonJournalFailed Reason = "journal_failed"
	ReasonNoGateway     Reason = "no_gateway"
	ReasonBadAck        Reason = "bad_acknowledgement"
)

// category is the sentinel a reason belongs to.
func (r Reason) category() error {
	switch r {
	case ReasonMalformed, ReasonNotFinite:
		return ErrInvalidCommand
	case ReasonUnknownTwin, ReasonUnknownActuator:
		return ErrUnknownTwin
	case ReasonOutOfRange, ReasonRateOfChange:
		return ErrEnvelope
	case ReasonOperatorRate, ReasonActuatorRate:
		return ErrRateLimited
	case ReasonNoGateway:
		return ErrNoGateway
	case ReasonBadAck:
		return ErrInvalidGrant
	}
	return ErrGatewayRefused
}

// problem is how a client is told of a refusal of the reason's category.
func (r Reason) problem() (int, problem.Type) {
	switch r.category() {
	case ErrInvalidCommand:
		return http.StatusBadRequest, problem.InvalidRequest
	case ErrUnknownTwin:
		return http.StatusNotFound, problem.NotFound
	case ErrEnvelope:
		return http.StatusUnprocessableEntity, problem.OutOfEnvelope
	case ErrRateLimited:
		return http.StatusTooManyRequests, problem.RateLimited
	case ErrNoGateway:
		return http.StatusServiceUnavailable, problem.GatewayAbsent
	case ErrInvalidGrant:
		return http.StatusBadGateway, problem.GatewayBadGrant
	}
	return http.StatusConflict, problem.GatewayRefused
}

// Refusal is why a command was not carried out. Detail is meant for the
// operator; it never carries secrets.
type Refusal struct {
	Reason Reason
	Detail string
}

func (e *Refusal) Error() string { return "twin: " + string(e.Reason) + ": " + e.Detail }

// Unwrap returns the refusal's category sentinel.
func (e *Refusal) Unwrap() error { return e.Reason.category() }

// Problem is the refusal as a client sees it: the stable reason code,
// then the explanation, under its category's status and problem type.
func (e *Refusal) Problem() *problem.Error {
	status, typ := e.Reason.problem()
	return &problem.Error{Status: status, Type: typ, Detail: string(e.Reason) + ": " + e.Detail, Err: e}
}

// badAck is ErrInvalidGrant for what a gateway sent back: the realm
// cannot tell what the gateway did, and says so as a bad gateway.
func badAck(format string, args ...any) error {
	return &problem.Error{Status: http.StatusBadGateway, Type: problem.GatewayBadGrant, Detail: fmt.Sprintf(format, args...), Err: ErrInvalidGrant}
}

func refuse(reason Reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason of a refusal in err's chain, or "".
func ReasonOf(err error) Reason {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}
