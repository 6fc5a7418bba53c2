package edge

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/problem"
)

// TestReceiptPendingIsNotARefusal: an intent applied without its
// receipt yet answers 409 receipt-pending with Retry-After, however
// deeply wrapped, never transfer-rejected or conflict: the client must
// send the same intent again, not sign a new one.
func TestReceiptPendingIsNotARefusal(t *testing.T) {
	err := fmt.Errorf("market: %w", fmt.Errorf("%w: intent 0xab", assets.ErrReceiptPending))
	a := problemFor(err)
	if a.status != http.StatusConflict || a.kind != TypeReceiptPending || a.retryAfter <= 0 || a.nothingChanged {
		t.Fatalf("problemFor(ErrReceiptPending) = %+v, want 409 %s with Retry-After, effect not none", a, TypeReceiptPending)
	}
}

// TestDomainProblemsKeepRetryAfter: a domain's problem is answered with
// its status, type, detail and Retry-After, as the domain wrote them.
func TestDomainProblemsKeepRetryAfter(t *testing.T) {
	a := problemFor(&problem.Error{Status: http.StatusConflict, Type: problem.Conflict, Detail: "busy", RetryAfter: 2 * time.Second})
	if a.status != http.StatusConflict || a.kind != string(problem.Conflict) || a.detail != "busy" || a.retryAfter != 2*time.Second {
		t.Fatalf("answer %+v, want 409 conflict \"busy\" with Retry-After 2s", a)
	}
}
