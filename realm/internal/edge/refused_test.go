package edge

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/problem"
)

// TestRefused tells a client's refusal, in the words the route answers
// with, from a failure of the realm, which stays an error.
func TestRefused(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantOK     bool
		wantDetail string
	}{
		{"edge 4xx", &Error{Status: http.StatusConflict, Detail: "the twin is busy"}, true, "the twin is busy"},
		{"edge 4xx wrapped", fmt.Errorf("command: %w", &Error{Status: http.StatusNotFound, Detail: "no twin"}), true, "no twin"},
		{"problem 4xx", &problem.Error{Status: http.StatusForbidden, Type: "forbidden", Detail: "the policy denies it"}, true, "the policy denies it"},
		{"agent out of scope", &agents.DenyError{Reason: agents.ReasonOutOfScope, Detail: "not delegated"}, true, "agent refused: out-of-scope: not delegated"},
		{"edge 5xx", &Error{Status: http.StatusServiceUnavailable, Detail: "the store is unavailable"}, false, ""},
		{"problem 5xx", &problem.Error{Status: http.StatusInternalServerError, Detail: "broken"}, false, ""},
		{"plain error", errors.New("nats: timeout"), false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			detail, ok := Refused(c.err)
			if ok != c.wantOK || detail != c.wantDetail {
				t.Fatalf("Refused(%v) = %q, %v; want %q, %v", c.err, detail, ok, c.wantDetail, c.wantOK)
			}
		})
	}
}
