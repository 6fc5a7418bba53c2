package edge

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zerorealm/zerorealm/agents"
)

// Agents authenticate with a delegation token and an RFC 9449 DPoP proof
// of the key it names (Authorization: DPoP <token>, DPoP: <proof>), never
// with a session. Routes say who may call them: Authed is for people only
// (an agent is refused with its reason), AuthedOrAgent lets an agent act
// within its delegation, AgentAuthed is for agents only.

// Problem types of agent authentication and authorization (docs/errors.md).
const (
	TypeDPoPNonce         = "use-dpop-nonce"
	TypeInvalidDPoPProof  = "invalid-dpop-proof"
	TypeDelegationInvalid = "invalid-delegation"
	TypeDelegationExpired = "delegation-expired"
	TypeDelegationRevoked = "delegation-revoked"
	TypeAgentSuspended    = "agent-suspended"
	TypeAgentForbidden    = "agent-forbidden"
	TypePeopleOnly        = "people-only"
)

// AgentGuard authenticates agents (agents.Guard): the chain, the proof of
// possession, revocations and suspensions.
type AgentGuard interface {
	Authenticate(ctx context.Context, req agents.ProofRequest) (*agents.Agent, error)
	// Nonce is the DPoP-Nonce this node answers with (RFC 9449 section 8).
	Nonce() string
	// Resume re-establishes the agent of an approved action.
	Resume(token string) (*agents.Agent, error)
}

type agentDeps struct {
	guard AgentGuard
	// base is the realm's public URL: a proof's htu is compared with its
	// scheme and host, never with the client's Host header.
	base func() *url.URL
}

// BindAgents gives the edge what agent authentication needs. Like Bind,
// the composition root calls it once during start-up, before the realm
// reports ready; without it every agent is refused.
func (e *Edge) BindAgents(guard AgentGuard, base func() *url.URL) {
	e.agents = &agentDeps{guard: guard, base: base}
}

// IsAgent reports whether the principal is an agent acting for Avatar.
func (p Principal) IsAgent() bool { return p.Agent != nil }

// presentsDPoP reports whether req uses the DPoP scheme: an agent's
// request, whatever else it carries.
func presentsDPoP(req *http.Request) bool {
	for _, h := range req.Header.Values("Authorization") {
		scheme, _, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "DPoP") {
			return true
		}
	}
	return false
}

var errPeopleOnly = &Error{Status: http.StatusForbidden, Type: TypePeopleOnly,
	Detail: "only a person may call this route (passkeys, sessions, delegations and approvals are never an agent's): sign in with a passkey"}

// AuthenticateAgent establishes the agent behind a DPoP request and loads
// its owner. A refusal is an *agents.DenyError (see AgentError).
func (e *Edge) AuthenticateAgent(req *http.Request) (Principal, error) {
	if e.agents == nil {
		return Principal{}, &Error{Status: http.StatusUnauthorized, Type: TypeDelegationInvalid, Detail: "this realm node does not accept agents yet"}
	}
	pr, err := agents.ProofRequestFromHTTP(req, e.agents.base())
	if err != nil {
		return Principal{}, err
	}
	a, err := e.agents.guard.Authenticate(req.Context(), pr)
	if err != nil {
		return Principal{}, err
	}
	return e.auth.agentPrincipal(req.Context(), a)
}

// AgentError maps a refusal of the agents domain (an *agents.DenyError in
// err's chain) to its answer: 401 with the problem type of its reason when
// the agent is not authenticated, 403 when its delegation or its trust
// refuses the action. A failure to decide (the revocation list unknown,
// the store down) stays what it is, so an outage is never a 401.
func AgentError(err error) error { return agentAuthError(err) }

func agentAuthError(err error) error {
	reason := agents.ReasonOf(err)
	if reason == "" {
		return err
	}
	he := &Error{Status: http.StatusUnauthorized, Type: TypeDelegationInvalid, Detail: "agent not authenticated: " + denyDetail(err), Err: err}
	switch reason {
	case agents.ReasonNonce:
		he.Type = TypeDPoPNonce
		he.Detail = "send the DPoP proof again with the nonce of the DPoP-Nonce header"
	case agents.ReasonProof, agents.ReasonProofBinding, agents.ReasonProofStale, agents.ReasonReplay:
		he.Type = TypeInvalidDPoPProof
	case agents.ReasonExpired, agents.ReasonNotYetValid:
		he.Type = TypeDelegationExpired
	case agents.ReasonRevoked:
		he.Type = TypeDelegationRevoked
	case agents.ReasonSuspended:
		he.Status, he.Type, he.Detail = http.StatusForbidden, TypeAgentSuspended, "agent refused: "+denyDetail(err)
	case agents.ReasonOutOfScope, agents.ReasonOverLimit, agents.ReasonRate:
		he.Status, he.Type, he.Detail = http.StatusForbidden, TypeAgentForbidden, "agent refused: "+denyDetail(err)
	}
	return he
}

func denyDetail(err error) string {
	var d *agents.DenyError
	if errors.As(err, &d) {
		return string(d.Reason) + ": " + d.Detail
	}
	return err.Error()
}

// WriteAgentError answers a refused agent (see AgentError) with the RFC
// 9449 challenge, and a fresh nonce when the proof lacked a current one.
func (e *Edge) WriteAgentError(w http.ResponseWriter, req *http.Request, err error) {
	if reason := agents.ReasonOf(err); reason != "" && IsAuthError(err) {
		w.Header().Set("WWW-Authenticate", agents.Challenge(err))
		if reason == agents.ReasonNonce && e.agents != nil {
			w.Header().Set("DPoP-Nonce", e.agents.guard.Nonce())
		}
	}
	e.WriteError(w, req, err)
}

// AuthedOrAgent wraps a handler that a person or an agent may call; the
// handler tells them apart with Principal.IsAgent and decides an agent's
// action with its delegation first.
func (e *Edge) AuthedOrAgent(h func(http.ResponseWriter, *http.Request, Principal)) http.HandlerFunc {
	person := e.Authed(h)
	return e.WhenReady(func(w http.ResponseWriter, req *http.Request) {
		if !presentsDPoP(req) {
			person(w, req)
			return
		}
		e.serveAgent(w, req, h)
	})
}

// AgentAuthed wraps a handler only an agent may call.
func (e *Edge) AgentAuthed(h func(http.ResponseWriter, *http.Request, Principal)) http.HandlerFunc {
	return e.WhenReady(func(w http.ResponseWriter, req *http.Request) {
		if !presentsDPoP(req) {
			w.Header().Set("WWW-Authenticate", `DPoP algs="EdDSA"`)
			e.WriteError(w, req, &Error{Status: http.StatusUnauthorized, Type: TypeDelegationInvalid, Detail: "this route is for agents: send Authorization: DPoP <delegation token> with a DPoP proof"})
			return
		}
		e.serveAgent(w, req, h)
	})
}

func (e *Edge) serveAgent(w http.ResponseWriter, req *http.Request, h func(http.ResponseWriter, *http.Request, Principal)) {
	// Agents send no cookies, but a browser page could forge the header:
	// the origin check holds for them as for people.
	if err := e.CheckOrigin(req); err != nil {
		e.WriteError(w, req, err)
		return
	}
	p, err := e.AuthenticateAgent(req)
	if err != nil {
		e.WriteAgentError(w, req, AgentError(err))
		return
	}
	h(w, req, p)
}
