package assets

import (
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// receiptsAnywhere counts the receipts of intent on every node's chain,
// as l's read model has them.
func receiptsAnywhere(l *Ledger, intent common.Hash, nodes ...string) int {
	n := 0
	for _, node := range nodes {
		for _, r := range l.Receipts(node, 0, 1<<20) {
			if r.Receipt.Intent == intent {
				n++
			}
		}
	}
	return n
}

// TestStraysAreAdoptedOnce: node n1 applies a unique and a credits
// transfer and is gone before their receipts. Nodes n2 and n3, both
// reconciling every 20 ms and adopting what another node left without a
// receipt for 100 ms, issue one receipt for each, on one of their
// chains, without n1's restart; when n1 comes back it issues none of
// its own (it has no orphan left, and Settle answers the adopted
// receipt).
func TestStraysAreAdoptedOnce(t *testing.T) {
	ctx := t.Context()
	a, b := newWallet(t), newWallet(t)
	colls := []Collection{
		{ID: "badges", Kind: Unique, Items: []ItemMint{{"one", a.addr}}},
		{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}},
	}
	st := testStore(t)
	n1 := reconcilingLedger(t, st, "n1", time.Hour, time.Hour, colls)
	sc := n1.Scheme()
	expires := uint64(time.Now().Add(time.Hour).Unix())
	var intents []common.Hash
	for _, tr := range []Transfer{
		{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 1, Deadline: expires},
		{Collection: "credits", Amount: 30, From: a.addr, To: b.addr, Nonce: 2, Deadline: expires},
	} {
		p := sc.Prepare(tr)
		sig, _ := Sign(p.Digest(), a.key)
		digest, _, err := n1.applyTransfer(ctx, p, sig, nil)
		if err != nil {
			t.Fatalf("apply %s on n1: %v", tr.Collection, err)
		}
		intents = append(intents, digest)
	}
	n1.Close()

	n2 := reconcilingLedger(t, st, "n2", 20*time.Millisecond, 100*time.Millisecond, colls)
	n3 := reconcilingLedger(t, st, "n3", 20*time.Millisecond, 100*time.Millisecond, colls)
	for _, intent := range intents {
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := n2.ReceiptFor(intent)
			if err == nil {
				if r.Receipt.Chain != "n2" && r.Receipt.Chain != "n3" {
					t.Fatalf("adopted receipt on chain %s, want n2's or n3's", r.Receipt.Chain)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no receipt for intent %s applied by a node that is gone, after 30s", intent.Hex())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Both adopters' read models up to the end of the stream; then
	// count every chain's receipts of each intent.
	for _, l := range []*Ledger{n2, n3} {
		if err := l.catchUpSubject(ctx, "ledger.receipts.n2"); err != nil {
			t.Fatal(err)
		}
		if err := l.catchUpSubject(ctx, "ledger.receipts.n3"); err != nil {
			t.Fatal(err)
		}
		for _, intent := range intents {
			if n := receiptsAnywhere(l, intent, "n1", "n2", "n3"); n != 1 {
				t.Fatalf("%s sees %d receipts of intent %s, want exactly one", l.Node(), n, intent.Hex())
			}
		}
	}

	back := reconcilingLedger(t, st, "n1", 20*time.Millisecond, time.Hour, colls)
	if left := back.orphanList(); len(left) != 0 {
		t.Fatalf("n1 back with %d orphans, want none: their receipts were adopted", len(left))
	}
	for _, intent := range intents {
		r, err := back.Settle(ctx, intent)
		if err != nil || r.Receipt.Chain == "n1" {
			t.Fatalf("Settle on n1 back = %+v, %v; want the adopted receipt", r.Receipt, err)
		}
	}
}

// TestOneNodeWinsAClaim: nodes claiming the late receipt of one intent
// at once: exactly one holds it, and each node asking again gets the
// same answer.
func TestOneNodeWinsAClaim(t *testing.T) {
	ctx := t.Context()
	st := testStore(t)
	var nodes []*Ledger
	for _, name := range []string{"n1", "n2", "n3", "n4"} {
		nodes = append(nodes, reconcilingLedger(t, st, name, time.Hour, time.Hour, nil))
	}
	intent := common.HexToHash("0x5eed")
	won := make([]bool, len(nodes))
	var wg sync.WaitGroup
	for i, l := range nodes {
		wg.Go(func() {
			mine, err := l.claim(ctx, intent)
			if err != nil {
				t.Errorf("%s claim: %v", l.Node(), err)
			}
			won[i] = mine
		})
	}
	wg.Wait()
	winners := 0
	for i, l := range nodes {
		if won[i] {
			winners++
		}
		again, err := l.claim(ctx, intent)
		if err != nil || again != won[i] {
			t.Fatalf("%s claims again: %v, %v; first %v", l.Node(), again, err, won[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d nodes hold the claim, want exactly one", winners)
	}
}
