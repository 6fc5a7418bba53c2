package assets

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

// lateBy is how far past its deadline a call may return in these tests:
// the acceptance bound of a request (its deadline plus one second), of
// which the clean-up's grace (store.CleanupGrace) takes half; the rest is
// for a loaded machine's scheduling.
const lateBy = time.Second

// TestNoQuorumAnswersWithinTheDeadline runs a ledger on a 3-node cluster
// and stops two of the servers, so the ledger stream has neither leader
// nor quorum. A unique transfer, a credits transfer (an atomic batch) and
// the release of a refused intent's nonce (a clean-up that must not be
// abandoned with the request, and ran on 5 s of its own before) each
// return by their context's deadline, the release within the clean-up's
// grace, with an error that says the store is unavailable or the deadline
// passed, and nothing moves.
func TestNoQuorumAnswersWithinTheDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	ctx := t.Context()
	servers := natstest.RunCluster(t, 3)
	st, err := store.New(ctx, natstest.Connect(t, servers[0].ClientURL()), store.Config{RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	a, b := newWallet(t), newWallet(t)
	l := newTestLedger(t, st, "n1", []Collection{
		{ID: "badges", Kind: Unique, Items: []ItemMint{{"one", a.addr}}},
		{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}},
	})
	sc := l.Scheme()
	expires := uint64(time.Now().Add(time.Hour).Unix())
	sign := func(tr Transfer) Signature {
		s, _ := Sign(sc.TransferDigest(&tr), a.key)
		return s
	}
	// A nonce spent while the cluster is whole, for the release below.
	refused := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 9, Deadline: expires}
	refusedDigest := sc.TransferDigest(&refused)
	refusedID := attemptID(refusedDigest)
	spent, err := l.spendNonce(ctx, &refused, refusedDigest, refusedID)
	if err != nil {
		t.Fatalf("spend a nonce with quorum: %v", err)
	}

	for _, srv := range servers[1:] {
		srv.Shutdown()
		srv.WaitForShutdown()
	}

	within := func(budget time.Duration, call func(context.Context) error) (deadline, returned time.Time, err error) {
		cctx, cancel := context.WithTimeout(ctx, budget)
		defer cancel()
		deadline, _ = cctx.Deadline()
		err = call(cctx)
		return deadline, time.Now(), err
	}
	unavailable := func(err error) bool {
		return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
	}

	item := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 1, Deadline: expires}
	credits := Transfer{Collection: "credits", Amount: 5, From: a.addr, To: b.addr, Nonce: 2, Deadline: expires}
	for _, c := range []struct {
		what string
		tr   Transfer
	}{{"unique transfer", item}, {"credits transfer", credits}} {
		deadline, returned, err := within(time.Second, func(cctx context.Context) error {
			_, err := l.Transfer(cctx, c.tr, sign(c.tr), nil)
			return err
		})
		if !unavailable(err) {
			t.Fatalf("%s without quorum = %v, want store.ErrUnavailable or the deadline", c.what, err)
		}
		if late := returned.Sub(deadline); late > lateBy {
			t.Fatalf("%s without quorum returned %v after its deadline: %v", c.what, late, err)
		}
	}

	deadline, returned, _ := within(300*time.Millisecond, func(cctx context.Context) error {
		l.releaseNonce(cctx, &refused, refusedDigest, refusedID, spent)
		return nil
	})
	if late := returned.Sub(deadline); late > store.CleanupGrace+lateBy/2 {
		t.Fatalf("the release of a refused intent's nonce without quorum returned %v after its request's deadline", late)
	}

	if owner, _, _ := l.view.owner("badges", "one"); owner != a.addr {
		t.Fatalf("owner of one after the refused transfers = %s, want a", owner.Hex())
	}
	if bal, _ := l.view.balance("credits", a.addr); bal != 100 {
		t.Fatalf("a's credits after the refused transfer = %d, want 100", bal)
	}
}
