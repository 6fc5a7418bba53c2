package assets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// TestLedgerHeadFindsADeletedTail: an attacker who writes NATS deletes the
// newest receipt block, so that a restarted node would rebuild balances
// without the transfers it attests. The node's head file, outside NATS,
// makes the next start fail with ErrRolledBack, until the operator
// restores the store or deletes the file to accept the ledger.
func TestLedgerHeadFindsADeletedTail(t *testing.T) {
	ctx := context.Background()
	a, b := newWallet(t), newWallet(t)
	colls := []Collection{{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}}}
	st := testStore(t)
	headFile := filepath.Join(t.TempDir(), "ledger-head")
	open := func() (*Ledger, error) {
		return New(ctx, st, testConfig(Config{Node: "n1", Collections: colls, CheckpointEvery: 1000, HeadFile: headFile}))
	}
	l, err := open()
	if err != nil {
		t.Fatal(err)
	}
	deadline := uint64(time.Now().Add(time.Hour).Unix())
	var last SignedReceipt
	for nonce := uint64(1); nonce <= 2; nonce++ {
		pay := Transfer{Collection: "credits", Amount: 10, From: a.addr, To: b.addr, Nonce: nonce, Deadline: deadline}
		sig, _ := Sign(l.Scheme().TransferDigest(&pay), a.key)
		if last, err = l.Transfer(ctx, pay, sig, nil); err != nil {
			t.Fatalf("Transfer %d: %v", nonce, err)
		}
	}
	l.Close()
	if h, err := readHead(headFile); err != nil || h.Index != last.Receipt.Index || h.Digest != last.Digest {
		t.Fatalf("head file = %+v, %v; want the last receipt %d %s", h, err, last.Receipt.Index, last.Digest.Hex())
	}
	l, err = open()
	if err != nil {
		t.Fatalf("restart on an intact ledger: %v", err)
	}
	l.Close()

	stream, err := st.JetStream().Stream(ctx, "ZR_LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	block, err := stream.GetLastMsgForSubject(ctx, "zr."+subjReceipts+"n1")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, block.Sequence); err != nil {
		t.Fatal(err)
	}
	if _, err := open(); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("restart without the newest receipts = %v, want ErrRolledBack", err)
	}
	if err := os.Remove(headFile); err != nil {
		t.Fatal(err)
	}
	l, err = open()
	if err != nil {
		t.Fatalf("restart after the operator accepted the ledger: %v", err)
	}
	l.Close()
}

func readHead(path string) (head, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return head{}, err
	}
	return parseHead(b)
}

// FuzzParseHead: the head file's parser refuses what it did not write and
// reads back what it did.
func FuzzParseHead(f *testing.F) {
	f.Add([]byte(head{Index: 7, Digest: common.HexToHash("0x01")}.encode()))
	f.Add([]byte("zerorealm-ledger-head/v1 01 0x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHead(b)
		if err != nil {
			return
		}
		if again, err := parseHead(h.encode()); err != nil || again != h {
			t.Fatalf("%q parsed as %+v, which reads back as %+v, %v", b, h, again, err)
		}
	})
}
