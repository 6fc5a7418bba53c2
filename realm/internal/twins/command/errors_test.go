package command

import (
	"context"
	"errors"
	"fmt"
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
	if !IsPolicyDeny(deny) || !IsPolicyDeny(fmt.Errorf("approve: %w", deny)) {
		t.Fatal("a policy deny is not recognised, alone or wrapped")
	}
	if IsPolicyDeny(errSelfApproval) || IsPolicyDeny(errors.New("other")) {
		t.Fatal("a refusal that is not the policy's is taken for one")
	}
	var ce *Error
	if !errors.As(deny, &ce) || ce.Kind != Forbidden || ce.Detail != "policy: no" {
		t.Fatalf("a policy deny is not a Forbidden Error: %+v", ce)
	}
}
