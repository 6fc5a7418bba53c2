package twins

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/twin"
)

func TestRefusalsBecomeProblems(t *testing.T) {
	for kind, want := range map[command.Kind]int{command.Forbidden: http.StatusForbidden, command.NotFound: http.StatusNotFound, command.Conflict: http.StatusConflict, 0: http.StatusInternalServerError} {
		var he *edge.Error
		if err := asProblem(&command.Error{Kind: kind, Detail: "why"}); !errors.As(err, &he) || he.Status != want || he.Detail != "why" {
			t.Errorf("kind %d = %v, want %d with the detail", kind, err, want)
		}
	}
	var he *edge.Error
	if err := asProblem(&command.Error{Kind: command.Conflict, Detail: "busy", RetryAfter: time.Second}); !errors.As(err, &he) || he.RetryAfter != time.Second {
		t.Errorf("a refusal's Retry-After was lost: %v", err)
	}
	// Twin and store errors keep their own mapping in the edge.
	if err := asProblem(twin.ErrEnvelope); err != twin.ErrEnvelope {
		t.Errorf("a twin error was rewritten: %v", err)
	}
}
