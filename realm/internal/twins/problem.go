package twins

import (
	"errors"
	"net/http"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
)

// asProblem is err as the edge answers it: a refusal of the command service
// becomes an edge.Error with the status its Kind says; anything else
// (twin and store errors) is left to the edge's own mapping.
func asProblem(err error) error {
	var ce *command.Error
	if !errors.As(err, &ce) {
		return err
	}
	he := &edge.Error{Status: statusOf(ce.Kind), Detail: ce.Detail, Err: ce.Err, RetryAfter: ce.RetryAfter}
	if ce.Kind == command.AgentForbidden {
		he.Type = edge.TypeAgentForbidden
	}
	return he
}

func statusOf(k command.Kind) int {
	switch k {
	case command.Forbidden, command.AgentForbidden:
		return http.StatusForbidden
	case command.NotFound:
		return http.StatusNotFound
	case command.Conflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
