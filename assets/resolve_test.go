package assets

import (
	"errors"
	"testing"
	"time"
)

// TestResolveTellsAnAppliedIntentFromARefusedOne: node n1 applies a
// unique and a credits transfer and stops before their receipts (their
// answers were lost). Sent again to node n2, each is refused by the
// ledger (not-owner, nonce-used), and Resolve on n2 says it was applied,
// receipt pending, instead of letting the refusal stand; once n1 issues
// the receipts, Resolve on n2 returns them. An intent whose nonce
// another intent spent, and a unique transfer that spent its nonce but
// never wrote its asset (a crash between the two appends), were not
// applied: ErrNotFound, and the refusal stands.
func TestResolveTellsAnAppliedIntentFromARefusedOne(t *testing.T) {
	ctx := t.Context()
	a, b := newWallet(t), newWallet(t)
	colls := []Collection{
		{ID: "badges", Kind: Unique, Items: []ItemMint{{"one", a.addr}, {"two", a.addr}}},
		{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}},
	}
	st := testStore(t)
	n1 := reconcilingLedger(t, st, "n1", time.Hour, time.Hour, colls)
	n2 := reconcilingLedger(t, st, "n2", time.Hour, time.Hour, colls)
	sc := n1.Scheme()
	expires := uint64(time.Now().Add(time.Hour).Unix())
	sign := func(tr Transfer) Signature {
		s, _ := Sign(sc.TransferDigest(&tr), a.key)
		return s
	}

	item := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 1, Deadline: expires}
	credits := Transfer{Collection: "credits", Amount: 30, From: a.addr, To: b.addr, Nonce: 2, Deadline: expires}
	applied := []Transfer{item, credits}
	for _, tr := range applied {
		if _, _, err := n1.applyTransfer(ctx, sc.Prepare(tr), sign(tr), nil); err != nil {
			t.Fatalf("apply %s on n1: %v", tr.Collection, err)
		}
	}
	wantReason := map[string]Reason{"badges": ReasonNotOwner, "credits": ReasonNonceUsed}
	for _, tr := range applied {
		_, err := n2.Transfer(ctx, tr, sign(tr), nil)
		if r := reasonOf(err); r != wantReason[tr.Collection] {
			t.Fatalf("%s sent again to n2 = %v, want the ledger's refusal %s", tr.Collection, err, wantReason[tr.Collection])
		}
		if _, err := n2.Resolve(ctx, sc.TransferDigest(&tr), &tr); !errors.Is(err, ErrReceiptPending) {
			t.Fatalf("Resolve of the applied %s transfer on n2 = %v, want ErrReceiptPending", tr.Collection, err)
		}
	}

	// Nonce 2 is spent by the credits transfer: another intent with it
	// was not applied.
	other := Transfer{Collection: "credits", Amount: 5, From: a.addr, To: b.addr, Nonce: 2, Deadline: expires}
	if _, err := n2.Resolve(ctx, sc.TransferDigest(&other), &other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve of an intent whose nonce another spent = %v, want ErrNotFound", err)
	}
	// A unique transfer that spent its nonce and stopped there.
	half := Transfer{Collection: "badges", AssetID: "two", Amount: 1, From: a.addr, To: b.addr, Nonce: 3, Deadline: expires}
	halfDigest := sc.TransferDigest(&half)
	if _, err := n1.spendNonce(ctx, &half, halfDigest, attemptID(halfDigest)); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Resolve(ctx, halfDigest, &half); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve of a unique transfer that spent its nonce only = %v, want ErrNotFound", err)
	}

	// n1 issues the receipts (its reconciler, or a retry sent to it);
	// then n2 answers them.
	for _, tr := range applied {
		digest := sc.TransferDigest(&tr)
		issued, err := n1.Settle(ctx, digest)
		if err != nil {
			t.Fatalf("Settle %s on n1: %v", tr.Collection, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := n2.Resolve(ctx, digest, &tr)
			if err == nil {
				if r.Digest != issued.Digest {
					t.Fatalf("%s: n2 resolved receipt %s, n1 issued %s", tr.Collection, r.Digest.Hex(), issued.Digest.Hex())
				}
				break
			}
			if !errors.Is(err, ErrReceiptPending) || time.Now().After(deadline) {
				t.Fatalf("Resolve of %s on n2 after n1 receipted it = %v", tr.Collection, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
