package assets

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFungibleTransfer measures a fungible transfer on one embedded
// node: one atomic batch (nonce, two balances and the holder's velocity
// record) and the wait for its receipt.
func BenchmarkFungibleTransfer(b *testing.B) {
	ctx := context.Background()
	a, to := newWallet(b), newWallet(b)
	l := newTestLedger(b, testStore(b), "n1", []Collection{{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, MaxAmount}}}})
	deadline := uint64(time.Now().Add(time.Hour).Unix())
	var nonce uint64
	b.ReportAllocs()
	for b.Loop() {
		nonce++
		tr := Transfer{Collection: "credits", Amount: 1, From: a.addr, To: to.addr, Nonce: nonce, Deadline: deadline}
		sig, _ := Sign(l.Scheme().TransferDigest(&tr), a.key)
		if _, err := l.Transfer(ctx, tr, sig, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}
