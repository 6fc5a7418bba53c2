package assets

import (
	"context"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/clock"
)

// TestCheckpointLoopRunsOnTheLedgersClock: with fewer receipts pending than
// CheckpointEvery, a checkpoint is signed when the ledger's clock passes
// CheckpointInterval. The interval is an hour and the test's limit a
// minute, so only a loop on the manual clock the test moves can pass.
func TestCheckpointLoopRunsOnTheLedgersClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := newWallet(t), newWallet(t)
	clk := clock.NewManual(time.Now())
	l := ledgerFor(t, testStore(t), Config{Node: "n1", Clock: clk, CheckpointEvery: 1000, CheckpointInterval: time.Hour,
		Collections: []Collection{{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}}}})
	if err := clk.WaitArmed(ctx, 1); err != nil { // the loop's ticker
		t.Fatal(err)
	}
	pay := Transfer{Collection: "credits", Amount: 5, From: a.addr, To: b.addr, Nonce: 1, Deadline: uint64(clk.Now().Add(time.Hour).Unix())}
	sig, _ := Sign(l.Scheme().TransferDigest(&pay), a.key)
	if _, err := l.Transfer(ctx, pay, sig, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour - time.Nanosecond)
	if cps := l.Checkpoints("n1"); len(cps) != 0 {
		t.Fatalf("a checkpoint before the interval passed: %+v", cps)
	}
	clk.Advance(time.Nanosecond)
	for len(l.Checkpoints("n1")) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no checkpoint once the clock passed CheckpointInterval")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cps := l.Checkpoints("n1")
	if len(cps) != 1 || cps[0].Checkpoint.Count != 1 {
		t.Fatalf("checkpoints = %+v, want one of the one receipt", cps)
	}
	if got, want := cps[0].Checkpoint.Time, uint64(clk.Now().Unix()); got != want {
		t.Fatalf("checkpoint time %d, want the ledger clock's %d", got, want)
	}
}
