package edge

import (
	"context"
	"errors"
	"net/http"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/problem"
)

// An agent's action that waited for its owner's approval runs later, on
// the request of its owner: these give the part that runs it the agent as
// a principal again, and keep the answer it would have had.

// errNoAgentGuard is a resumption before BindAgents: no agent is served.
var errNoAgentGuard = errors.New("edge: agents are not served yet")

// ResumeAgent re-establishes the agent of an approved action from its
// resume token (agents.Guard.Resume), without a request of its own, as a
// principal: the agent and its owner, loaded now. A revoked or suspended
// agent, or an owner deleted since, is a refusal (AgentError).
func (e *Edge) ResumeAgent(ctx context.Context, token string) (Principal, error) {
	if e.agents == nil {
		return Principal{}, errNoAgentGuard
	}
	a, err := e.agents.guard.Resume(token)
	if err != nil {
		return Principal{}, AgentError(err)
	}
	return e.auth.agentPrincipal(ctx, a)
}

// agentPrincipal is the agent with its owner, loaded now; an owner deleted
// since is a refusal (invalid-delegation).
func (d *authDeps) agentPrincipal(ctx context.Context, a *agents.Agent) (Principal, error) {
	av, err := d.avatars.GetCached(ctx, a.Owner())
	switch {
	case errors.Is(err, avatar.ErrNotFound):
		return Principal{}, &Error{Status: http.StatusUnauthorized, Type: TypeDelegationInvalid, Detail: "the delegation's owner no longer exists", Err: err}
	case err != nil:
		return Principal{}, err
	}
	return Principal{Avatar: av, Agent: a}, nil
}

// ProblemOf is the problem the edge would answer err with, for a record
// that keeps an answer to give later (an approved agent action that failed
// when it ran).
func ProblemOf(err error) *problem.Error {
	a := problemFor(err)
	return &problem.Error{Status: a.status, Type: problem.Type(a.kind), Detail: a.detail, Err: err}
}
