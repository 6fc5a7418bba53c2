package market

import (
	"errors"
	"net/http"
	"testing"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// An approved transfer that found the store away moved nothing: it is
// asked again, not failed; a refusal stays the refusal.
func TestOnlyUnavailableIsNotAnOutcome(t *testing.T) {
	away := &edge.Error{Status: http.StatusServiceUnavailable, Detail: "the audit log is away; nothing moved", NothingChanged: true}
	if err := outcomeUnknownIfUnavailable(away); !errors.Is(err, approval.ErrOutcomeUnknown) || !errors.Is(err, away) {
		t.Fatalf("503 = %v, want the outcome unknown, wrapping the 503", err)
	}
	refused := &edge.Error{Status: http.StatusForbidden, Type: edge.TypeAgentForbidden, Detail: "over-limit"}
	if err := outcomeUnknownIfUnavailable(refused); err != refused {
		t.Fatalf("403 = %v, want the refusal itself", err)
	}
	if err := outcomeUnknownIfUnavailable(nil); err != nil {
		t.Fatalf("nil = %v", err)
	}
}
