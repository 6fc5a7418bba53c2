package assets

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/store"
)

// reconcilingLedger is a test ledger with the reconciler's interval (an
// hour keeps it from running during a test) and how long it leaves
// another node's intents to that node (Config.AdoptAfter).
func reconcilingLedger(t *testing.T, st *store.Store, node string, interval, adoptAfter time.Duration, colls []Collection) *Ledger {
	return ledgerFor(t, st, Config{Node: node, Collections: colls, ReconcileInterval: interval, AdoptAfter: adoptAfter})
}

// receiptsOf counts the receipts of intent on the node's chain.
func receiptsOf(l *Ledger, intent common.Hash) int { return receiptsAnywhere(l, intent, l.Node()) }

// TestReconcilerReceiptsAnAppliedIntent: a transfer applied and never
// answered (the node stopped between its effect and its receipt: here,
// applyTransfer without what follows) is receipted by the running node's
// reconciler, without a restart, once; a unique asset and a fungible
// balance alike.
func TestReconcilerReceiptsAnAppliedIntent(t *testing.T) {
	ctx := context.Background()
	a, b := newWallet(t), newWallet(t)
	l := reconcilingLedger(t, testStore(t), "n1", 20*time.Millisecond, time.Hour, []Collection{
		{ID: "badges", Kind: Unique, Items: []ItemMint{{"one", a.addr}}},
		{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}},
	})
	sc := l.Scheme()
	deadline := uint64(time.Now().Add(time.Hour).Unix())
	for _, tr := range []Transfer{
		{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 1, Deadline: deadline},
		{Collection: "credits", Amount: 30, From: a.addr, To: b.addr, Nonce: 2, Deadline: deadline},
	} {
		p := sc.Prepare(tr)
		sig, _ := Sign(p.Digest(), a.key)
		digest, seq, err := l.applyTransfer(ctx, p, sig, nil)
		if err != nil {
			t.Fatalf("applyTransfer(%s): %v", tr.Collection, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := l.ReceiptFor(digest)
			if err == nil {
				if r.Receipt.Sequence != seq || r.Receipt.Chain != "n1" {
					t.Fatalf("%s: reconciled receipt %+v; want sequence %d on chain n1", tr.Collection, r.Receipt, seq)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no receipt for an applied intent after 30s", tr.Collection)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A few more passes must not receipt it again.
		time.Sleep(100 * time.Millisecond)
		if n := receiptsOf(l, digest); n != 1 {
			t.Fatalf("%s: %d receipts for one intent; want 1", tr.Collection, n)
		}
	}
	if _, err := VerifyChain(l.Receipts("n1", 0, 1<<20), func(a common.Address) bool { return a == l.Signer() }); err != nil {
		t.Fatalf("chain after reconciling: %v", err)
	}
}

// TestSettleIssuesOneReceipt: an applied intent without a receipt,
// settled by many callers at once (resubmissions, the reconciler), gets
// one receipt, and every caller gets that one; an intent never applied is
// ErrNotFound.
func TestSettleIssuesOneReceipt(t *testing.T) {
	ctx := context.Background()
	a, b := newWallet(t), newWallet(t)
	l := reconcilingLedger(t, testStore(t), "n1", time.Hour, time.Hour, []Collection{
		{ID: "badges", Kind: Unique, Items: []ItemMint{{"one", a.addr}}},
	})
	sc := l.Scheme()
	tr := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 1, Deadline: uint64(time.Now().Add(time.Hour).Unix())}
	p := sc.Prepare(tr)
	sig, _ := Sign(p.Digest(), a.key)
	if _, err := l.Settle(ctx, p.Digest()); !isNotFound(err) {
		t.Fatalf("Settle before the intent was applied = %v; want ErrNotFound", err)
	}
	digest, seq, err := l.applyTransfer(ctx, p, sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitApplied(ctx, seq); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]SignedReceipt, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				_, errs[i] = l.receiptOrphans(ctx, l.orphanList())
				got[i], _ = l.ReceiptFor(digest)
				return
			}
			got[i], errs[i] = l.Settle(ctx, digest)
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i].Digest != got[0].Digest || got[i].Receipt.Intent != digest {
			t.Fatalf("caller %d: %+v, %v; want the one receipt %s", i, got[i].Receipt, errs[i], got[0].Digest.Hex())
		}
	}
	if n := receiptsOf(l, digest); n != 1 {
		t.Fatalf("%d receipts for one intent settled 8 times at once; want 1", n)
	}
	// The resubmitted intent itself still meets the moved asset; Settle
	// is what answers it.
	if _, err := l.TransferPrepared(ctx, p, sig, nil); reasonOf(err) != ReasonNotOwner {
		t.Fatalf("resubmitted Transfer = %v; want %s", err, ReasonNotOwner)
	}
	if r, err := l.Settle(ctx, digest); err != nil || r.Digest != got[0].Digest {
		t.Fatalf("Settle of a receipted intent = %+v, %v; want its receipt", r, err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
