package twins

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/twin"
)

// TestRefusalsAreProblems: a refusal of the command service carries its
// status, type, detail and Retry-After the internal/problem way, which is
// what the edge's one mapping reads; an Error of no known kind carries
// none (the edge answers it as an internal error).
func TestRefusalsAreProblems(t *testing.T) {
	for kind, want := range map[command.Kind]struct {
		status int
		typ    problem.Type
	}{
		command.Forbidden: {http.StatusForbidden, problem.Forbidden},
		command.NotFound:  {http.StatusNotFound, problem.NotFound},
		command.Conflict:  {http.StatusConflict, problem.Conflict},
	} {
		err := error(&command.Error{Kind: kind, Detail: "why", RetryAfter: time.Second})
		p, ok := problem.As(err)
		if !ok || p.Status != want.status || p.Type != want.typ || p.Detail != "why" || p.RetryAfter != time.Second {
			t.Errorf("kind %d = %+v, want %d %s with the detail and Retry-After", kind, p, want.status, want.typ)
		}
		if got := edge.PublicDetail(err); got != "why" {
			t.Errorf("kind %d: the edge tells %q, want the detail", kind, got)
		}
	}
	if p, ok := problem.As(&command.Error{Detail: "no kind"}); ok {
		t.Errorf("an Error of no kind = %+v, want no problem", p)
	}
	// Twin errors keep their own problems.
	if p, ok := problem.As(twin.ErrEnvelope); ok && p.Type == problem.Forbidden {
		t.Errorf("a twin error became a refusal: %+v", p)
	}
	var ce *command.Error
	if errors.As(twin.ErrEnvelope, &ce) {
		t.Error("a twin error reads as a command refusal")
	}
}
