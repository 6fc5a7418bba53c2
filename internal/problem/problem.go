package problem

import (
	"errors"
	"net/http"
	"time"
)

// Type is a problem type's slug; its URI is Base + the slug. A type, once
// published, keeps its name and meaning: clients branch on it.
type Type string

// Base prefixes every problem type URI.
const Base = "https://zerorealm.dev/problems/"

// The types a domain may raise.
const (
	InvalidRequest   Type = "invalid-request"
	NotFound         Type = "not-found"
	Conflict         Type = "conflict"
	Forbidden        Type = "forbidden"
	Unprocessable    Type = "unprocessable"
	RateLimited      Type = "rate-limited"
	OutOfEnvelope    Type = "out-of-envelope"
	TransferRejected Type = "transfer-rejected"
	GatewayAbsent    Type = "gateway-unavailable"
	GatewayBadGrant  Type = "gateway-invalid-grant"
	GatewayRefused   Type = "gateway-refused"
	AgentForbidden   Type = "agent-forbidden"
)

// URI is the type's URI, the problem's "type" member.
func (t Type) URI() string { return Base + string(t) }

// Error is a failure a client can act on. Err, when set, is the sentinel
// callers test with errors.Is, and leads the error's text for the log;
// Detail alone is what a client is shown.
type Error struct {
	Status int
	Type   Type
	Detail string
	Err    error
	// RetryAfter, when set, is how long the client should wait before
	// asking again (sent as Retry-After).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error() + ": " + e.Detail
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Problem lets a domain's own error type carry a problem without being an
// *Error (a refusal with its reason, for one).
type Problem interface {
	Problem() *Error
}

// As finds the problem err carries: an *Error in its chain, or an error
// in its chain that says its problem.
func As(err error) (*Error, bool) {
	var carrier Problem
	if errors.As(err, &carrier) {
		if p := carrier.Problem(); p != nil {
			return p, true
		}
	}
	var p *Error
	if errors.As(err, &p) {
		return p, true
	}
	return nil, false
}

// Invalid is a 400 invalid-request wrapping the sentinel: the request
// names something the domain refuses, and detail says what.
func Invalid(sentinel error, detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: InvalidRequest, Detail: detail, Err: sentinel}
}

// Missing is a 404 not-found wrapping the sentinel.
func Missing(sentinel error, detail string) *Error {
	return &Error{Status: http.StatusNotFound, Type: NotFound, Detail: detail, Err: sentinel}
}

// Refused is a 403 forbidden wrapping cause: the caller may not do this.
func Refused(cause error, detail string) *Error {
	return &Error{Status: http.StatusForbidden, Type: Forbidden, Detail: detail, Err: cause}
}

// Conflicting is a 409 conflict wrapping cause: the state does not allow
// it now.
func Conflicting(cause error, detail string) *Error {
	return &Error{Status: http.StatusConflict, Type: Conflict, Detail: detail, Err: cause}
}

// Detail is what a client may be shown of err: its problem's detail, or,
// for an error that carries none, its text.
func Detail(err error) string {
	if p, ok := As(err); ok {
		return p.Detail
	}
	return err.Error()
}
