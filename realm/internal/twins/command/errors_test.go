package command

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/policy"
)

func TestApprovalIDsAreCommandHashes(t *testing.T) {
	// A service that never started: an id that is not a command hash must
	// be refused before the store is asked.
	s := &Service{}
	for _, id := range []string{"", "nope", "0x" + strings.Repeat("a", 63), strings.Repeat("g", 64), "0x" + strings.Repeat("a", 65)} {
		_, _, err := s.LoadApproval(context.Background(), id)
		var ce *Error
		if !errors.As(err, &ce) || ce.Kind != NotFound {
			t.Errorf("approval id %q: %v, want a NotFound refusal", id, err)
		}
	}
}

func TestRefusalsSayWhatTheyAre(t *testing.T) {
	deny := denied("policy: no", policy.Decision{Reason: "no"})
	if !IsPolicyDeny(deny) || !IsPolicyDeny(&refusal{deny}) {
		t.Fatal("a policy deny is not recognised, alone or as a refusal")
	}
	if IsPolicyDeny(errSelfApproval) || IsPolicyDeny(errors.New("other")) {
		t.Fatal("a refusal that is not the policy's is taken for one")
	}
	if !IsRefusal(&refusal{errSelfApproval}) || IsRefusal(errSelfApproval) {
		t.Fatal("IsRefusal does not tell a refused command from another failure")
	}
	var ce *Error
	if !errors.As(&refusal{deny}, &ce) || ce.Kind != Forbidden || ce.Detail != "policy: no" {
		t.Fatalf("a refusal hides its Error: %+v", ce)
	}
}

func TestIdempotencyKeysArePerOperator(t *testing.T) {
	if idempotencyKey("ada", "k1") == idempotencyKey("grace", "k1") {
		t.Fatal("two operators' commands share a key")
	}
	// The separator keeps operator and key apart.
	if idempotencyKey("ab", "c") == idempotencyKey("a", "bc") {
		t.Fatal("operator and key run together")
	}
	if k := idempotencyKey("ada", "k1"); len(k) != 40 || k != idempotencyKey("ada", "k1") {
		t.Fatalf("key %q: want 40 hex digits, the same each time", k)
	}
}
