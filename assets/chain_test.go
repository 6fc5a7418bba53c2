package assets

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// TestReceiptChainPipelinedUnderAnIntruder runs two ledgers under the same
// node name (a second process started by mistake) that both issue receipts
// for concurrent transfers, so that blocks signed ahead while another is
// in flight keep meeting compare-and-set conflicts and failed appends. The
// stored chain must still link without a gap, and every receipt a
// transfer returned must be the one stored at its index.
func TestReceiptChainPipelinedUnderAnIntruder(t *testing.T) {
	ctx := context.Background()
	a, b := newWallet(t), newWallet(t)
	const perLedger = 40
	var items []ItemMint
	for i := range 2 * perLedger {
		items = append(items, ItemMint{fmt.Sprintf("i%d", i), a.addr})
	}
	colls := []Collection{{ID: "relics", Kind: Unique, Items: items}}
	st := testStore(t)
	l1 := newTestLedger(t, st, "n1", colls)
	l2 := newTestLedger(t, st, "n1", colls)
	sc := l1.Scheme()
	deadline := uint64(time.Now().Add(time.Hour).Unix())

	var mu sync.Mutex
	var got []SignedReceipt
	var wg sync.WaitGroup
	for i := range 2 * perLedger {
		l := l1
		if i%2 == 1 {
			l = l2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := Transfer{Collection: "relics", AssetID: fmt.Sprintf("i%d", i), Amount: 1, From: a.addr, To: b.addr, Nonce: uint64(i), Deadline: deadline}
			sig, _ := Sign(sc.TransferDigest(&tr), a.key)
			r, err := l.Transfer(ctx, tr, sig, nil)
			if err != nil {
				return // the intruder may cost a receipt; the chain must stay whole
			}
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(got) == 0 {
		t.Fatal("no transfer got a receipt")
	}
	if err := l1.catchUpSubject(ctx, l1.chain.subject); err != nil {
		t.Fatal(err)
	}
	stored := l1.Receipts("n1", 0, 1000)
	trusted := func(s common.Address) bool { return s == l1.Signer() || s == l2.Signer() }
	if i, err := VerifyChain(stored, trusted); i != -1 {
		t.Fatalf("stored chain broken at %d: %v", i, err)
	}
	for i, r := range stored {
		if r.Receipt.Index != uint64(i) {
			t.Fatalf("stored receipt %d has index %d", i, r.Receipt.Index)
		}
	}
	for _, r := range got {
		if r.Receipt.Index >= uint64(len(stored)) || stored[r.Receipt.Index].Digest != r.Digest {
			t.Fatalf("returned receipt %d (%s) is not the stored one", r.Receipt.Index, r.Digest.Hex())
		}
	}
	// A node that reads every block from its bytes sees the same chain
	// as the one that applied its own blocks as it built them.
	l3 := newTestLedger(t, st, "n3", colls)
	if err := l3.catchUpSubject(ctx, l1.chain.subject); err != nil {
		t.Fatal(err)
	}
	if read := l3.Receipts("n1", 0, 1000); !reflect.DeepEqual(read, stored) {
		t.Fatalf("chain read from the stream (%d receipts) differs from the chain applied as built (%d)", len(read), len(stored))
	}
	// Likewise the assets, whose records l1 and l2 applied as they wrote
	// them and l3 decoded.
	if err := l3.WaitApplied(ctx, l1.follower.Applied()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * perLedger {
		item := fmt.Sprintf("i%d", i)
		for _, l := range []*Ledger{l1, l2} {
			if err := l.WaitApplied(ctx, l1.follower.Applied()); err != nil {
				t.Fatal(err)
			}
			mine, err1 := l.Asset("relics", item)
			read, err2 := l3.Asset("relics", item)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(mine, read) {
				t.Fatalf("asset %s: applied as written %+v (%v), read from the stream %+v (%v)", item, mine, err1, read, err2)
			}
		}
	}
	t.Logf("%d of %d transfers got a receipt; chain of %d", len(got), 2*perLedger, len(stored))
}

// TestAppendReceiptBlockMatchesEncodingJSON holds the chain's block encoder
// to encoding/json's bytes, which the projection decodes.
func TestAppendReceiptBlockMatchesEncodingJSON(t *testing.T) {
	w := newWallet(t)
	for n := 1; n <= 5; n++ {
		blk := receiptBlock{Signer: w.addr}
		for i := range n {
			var sig Signature
			for j := range sig {
				sig[j] = byte(i*31 + j*7 + n)
			}
			blk.Receipts = append(blk.Receipts, receiptEntry{
				Intent: common.BytesToHash([]byte{byte(i), 0xab, byte(n)}), Sequence: uint64(1) << (i * 13), Index: uint64(i * 1000),
				Previous: common.BytesToHash([]byte{0xff, byte(i)}), Time: 1_800_000_000 + uint64(i), Signature: sig,
			})
		}
		want, err := json.Marshal(blk)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendReceiptBlock(nil, &blk); string(got) != string(want) {
			t.Fatalf("block of %d:\n got %s\nwant %s", n, got, want)
		}
	}
}

func TestAddrTokenIsLowerCaseHex(t *testing.T) {
	for range 20 {
		a := newWallet(t).addr
		if got, want := addrToken(a), strings.ToLower(a.Hex()); got != want {
			t.Fatalf("addrToken = %s, want %s", got, want)
		}
	}
	if got := nonceSubject(common.Address{0xab}, 42); got != subjNonce+"0xab00000000000000000000000000000000000000.42" {
		t.Fatalf("nonceSubject = %s", got)
	}
}

// TestAppendAssetRecordMatchesEncodingJSON holds the transfer's record
// encoder to encoding/json's bytes, escapes and omitted fields included.
func TestAppendAssetRecordMatchesEncodingJSON(t *testing.T) {
	a, b := newWallet(t), newWallet(t)
	tr := Transfer{Collection: "relics", AssetID: "sword-7", Amount: 1, From: a.addr, To: b.addr, Nonce: 18446744073709551615, Deadline: 1_800_000_000}
	msg := MessageOf(&tr)
	odd := msg
	odd.Collection, odd.AssetID = "a<b>&\"c\\", "é\u2028\x01"
	var sig Signature
	sig[64] = 27
	recs := []assetRecord{
		{Event: "mint", Owner: a.addr},
		{Event: "transfer", Owner: b.addr, Digest: common.Hash{1, 2, 3}, Intent: &msg, Signature: sig.String(), Node: "node-1"},
		{Event: "transfer", Owner: b.addr, Intent: &odd, Node: "n<1>"},
	}
	for i := range recs {
		want, err := json.Marshal(recs[i])
		if err != nil {
			t.Fatal(err)
		}
		if got := appendAssetRecord(nil, &recs[i]); string(got) != string(want) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
