package command

import (
	"errors"
	"time"

	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/policy"
)

// Kind is what a refusal of the service means to whoever asked; Problem
// says it as an HTTP status and problem type, which the edge answers with.
type Kind int

const (
	// Forbidden: the operator may not do this (policy, zone, approving
	// their own command).
	Forbidden Kind = iota + 1
	// NotFound: no such approval.
	NotFound
	// Conflict: the state does not allow it now (a command already
	// waiting, an approval already decided, a requester gone).
	Conflict
	// AgentForbidden: an agent's delegation, or the scene's policies, refuse
	// the agent's command.
	AgentForbidden
)

// Error is a refusal by the service. Detail is meant for the client; Err,
// when set, is the cause (a policy decision, a store error).
type Error struct {
	Kind   Kind
	Detail string
	Err    error
	// RetryAfter, when set, is how long to wait before asking again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Problem is the refusal as a client is told it (problem.Problem): the
// status and type of its Kind, its Detail and RetryAfter. An Error of no
// known Kind carries none, so the edge answers it as an internal error.
func (e *Error) Problem() *problem.Error {
	var p *problem.Error
	switch e.Kind {
	case Forbidden:
		p = problem.Refused(e.Err, e.Detail)
	case AgentForbidden:
		p = problem.Refused(e.Err, e.Detail)
		p.Type = problem.AgentForbidden
	case NotFound:
		p = problem.Missing(e.Err, e.Detail)
	case Conflict:
		p = problem.Conflicting(e.Err, e.Detail)
	default:
		return nil
	}
	p.RetryAfter = e.RetryAfter
	return p
}

// policyDeny is the cause of a refusal by the scene's policies, whose
// decision is already audited where it was taken.
type policyDeny struct{ d policy.Decision }

func (e *policyDeny) Error() string { return "policy: " + e.d.Reason }

// IsPolicyDeny reports whether err is a refusal by the scene's policies:
// that decision is on the audit record already, so a caller does not
// audit it again.
func IsPolicyDeny(err error) bool {
	var pd *policyDeny
	return errors.As(err, &pd)
}

// denied is the refusal of a policy decision d.
func denied(detail string, d policy.Decision) error {
	return &Error{Kind: Forbidden, Detail: detail, Err: &policyDeny{d}}
}

var (
	errSelfApproval  = &Error{Kind: Forbidden, Detail: "a command cannot be approved by the operator who requested it; a second operator must approve"}
	errRequesterGone = &Error{Kind: Conflict, Detail: "the requester's session has ended or was revoked; the command cannot be carried out"}
	errBadApprovalID = &Error{Kind: NotFound, Detail: "approval ids are command hashes: 0x and 64 hex digits"}
	errNoApproval    = &Error{Kind: NotFound, Detail: "no such approval (they expire after 10 minutes)"}
)
