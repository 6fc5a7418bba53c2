package edge

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/zerorealm/zerorealm/assets"
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
