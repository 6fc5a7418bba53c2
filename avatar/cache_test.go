package avatar

import (
	"context"
	"errors"
	"testing"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// TestStaleCacheNeverAdmits runs two services on one store, as two realm
// nodes, and changes an avatar through one while the other holds a cached
// copy: the other must still refuse what the change forbids.
func TestStaleCacheNeverAdmits(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	nodeA, err := New(ctx, st, Config{Origins: []string{testOrigin}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	nodeB, err := New(ctx, st, Config{Origins: []string{testOrigin}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	first, second := webauthntest.New(), webauthntest.New()
	av, cred := register(t, nodeA, first, "heidi")

	// A second passkey, added through node B, so node A's copy is stale.
	c, err := nodeB.BeginRegistration(ctx, Registration{}, av.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := second.Register(c.Options, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := nodeB.FinishRegistration(ctx, c.ID, resp); err != nil {
		t.Fatal(err)
	}
	// Node A signs in once so its cache certainly holds the record.
	id, assertion := beginLogin(t, nodeA, first, "")
	if _, err := nodeA.FinishLogin(ctx, id, assertion); err != nil {
		t.Fatal(err)
	}
	// Node B deletes the first passkey; node A's cached copy still has it.
	if err := nodeB.DeleteCredential(ctx, av.ID, cred.ID); err != nil {
		t.Fatal(err)
	}
	id, assertion = beginLogin(t, nodeA, first, "")
	if _, err := nodeA.FinishLogin(ctx, id, assertion); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrVerification) {
		t.Fatalf("sign-in on node A with a passkey deleted on node B = %v, want refused", err)
	}
	// The second passkey, unknown to node A's copy until it re-reads, works.
	id, assertion = beginLogin(t, nodeA, second, "")
	got, err := nodeA.FinishLogin(ctx, id, assertion)
	if err != nil {
		t.Fatalf("sign-in on node A with the passkey added on node B: %v", err)
	}
	if len(got.Avatar.Credentials) != 1 {
		t.Fatalf("avatar as node A returns it has %d passkeys, want 1 (the fresh record)", len(got.Avatar.Credentials))
	}
}
