package assets

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

type wallet struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

func newWallet(t testing.TB) wallet {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return wallet{k, crypto.PubkeyToAddress(k.PublicKey)}
}

func newTestLedger(t testing.TB, st *store.Store, node string, colls []Collection) *Ledger {
	return ledgerFor(t, st, Config{Node: node, Collections: colls, CheckpointEvery: 4})
}

// testConfig is cfg with what every test ledger shares where cfg leaves
// it zero: a fresh signer, cheap custody keys, no timed checkpoint during
// a test (an hour) and a discarded log.
func testConfig(cfg Config) Config {
	if cfg.Signer == nil {
		cfg.Signer, _ = crypto.GenerateKey()
	}
	if cfg.Passphrase == "" {
		cfg.Passphrase = "test"
	}
	if cfg.CustodyScryptN == 0 {
		cfg.CustodyScryptN = 2
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// ledgerFor starts a ledger on st with testConfig(cfg), closed when the
// test ends.
func ledgerFor(t testing.TB, st *store.Store, cfg Config) *Ledger {
	t.Helper()
	l, err := New(context.Background(), st, testConfig(cfg))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

func testStore(t testing.TB) *store.Store {
	srv := natstest.RunServer(t)
	st, err := store.New(context.Background(), natstest.ConnectInProcess(t, srv), store.Config{RecordKey: testRecordKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func reasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

func TestLedgerTransfersTradesReceipts(t *testing.T) {
	ctx := context.Background()
	a, b := newWallet(t), newWallet(t)
	colls := []Collection{
		{ID: "badges", Kind: Unique, Items: []ItemMint{{"one", a.addr}, {"two", b.addr}}},
		{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}},
	}
	st := testStore(t)
	l := newTestLedger(t, st, "n1", colls)
	sc := l.Scheme()
	deadline := uint64(time.Now().Add(time.Hour).Unix())

	tr := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 1, Deadline: deadline}
	sig, _ := Sign(sc.TransferDigest(&tr), a.key)
	r1, err := l.Transfer(ctx, tr, sig, nil)
	if err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	if _, err := l.Transfer(ctx, tr, sig, nil); reasonOf(err) != ReasonNotOwner {
		t.Fatalf("replayed Transfer = %v, want %s (the asset moved)", err, ReasonNotOwner)
	}
	// Back to a with b's signature, then a's first intent replayed: the
	// asset is a's again, but the nonce is spent.
	back := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: b.addr, To: a.addr, Nonce: 1, Deadline: deadline}
	bsig, _ := Sign(sc.TransferDigest(&back), b.key)
	if _, err := l.Transfer(ctx, back, bsig, nil); err != nil {
		t.Fatalf("Transfer back: %v", err)
	}
	if _, err := l.Transfer(ctx, tr, sig, nil); reasonOf(err) != ReasonNonceUsed {
		t.Fatalf("replayed Transfer after return = %v, want %s", err, ReasonNonceUsed)
	}

	pay := Transfer{Collection: "credits", Amount: 30, From: a.addr, To: b.addr, Nonce: 2, Deadline: deadline}
	psig, _ := Sign(sc.TransferDigest(&pay), a.key)
	if _, err := l.Transfer(ctx, pay, psig, nil); err != nil {
		t.Fatalf("fungible Transfer: %v", err)
	}
	if bal, _ := l.view.balance("credits", b.addr); bal != 30 {
		t.Fatalf("balance of b = %d, want 30", bal)
	}

	// A trade whose give leg is stale (a no longer owns "one"... a does;
	// make it stale by moving it first) changes nothing.
	trade := Trade{
		Give: Transfer{Collection: "credits", Amount: 10, From: b.addr, To: a.addr, Nonce: 5, Deadline: deadline},
		Take: Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 6, Deadline: deadline},
	}
	td := sc.TradeDigest(&trade)
	gs, _ := Sign(td, b.key)
	ts, _ := Sign(td, a.key)
	move := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 7, Deadline: deadline}
	msig, _ := Sign(sc.TransferDigest(&move), a.key)
	if _, err := l.Transfer(ctx, move, msig, nil); err != nil {
		t.Fatal(err)
	}
	before := l.follower.Applied()
	if _, err := l.Trade(ctx, trade, gs, ts, nil); reasonOf(err) != ReasonNotOwner {
		t.Fatalf("Trade with a stale leg = %v, want %s", err, ReasonNotOwner)
	}
	if bal, _ := l.view.balance("credits", b.addr); bal != 30 {
		t.Fatalf("balance of b after refused trade = %d, want 30", bal)
	}
	// Fresh trade: b gives 10 credits for "two"... b owns two; use one (b owns it now).
	trade2 := Trade{
		Give: Transfer{Collection: "credits", Amount: 10, From: a.addr, To: b.addr, Nonce: 8, Deadline: deadline},
		Take: Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: b.addr, To: a.addr, Nonce: 9, Deadline: deadline},
	}
	td2 := sc.TradeDigest(&trade2)
	gs2, _ := Sign(td2, a.key)
	ts2, _ := Sign(td2, b.key)
	if _, err := l.Trade(ctx, trade2, gs2, ts2, nil); err != nil {
		t.Fatalf("Trade: %v", err)
	}
	if owner, _, _ := l.view.owner("badges", "one"); owner != a.addr {
		t.Fatalf("owner of one after trade = %s, want a", owner.Hex())
	}
	if l.follower.Applied() <= before {
		t.Fatal("trade applied nothing")
	}

	// Receipts chain and verify with go-ethereum.
	if err := l.catchUpSubject(ctx, l.chain.subject); err != nil {
		t.Fatal(err)
	}
	rs := l.Receipts("n1", 0, 100)
	if len(rs) != 5 {
		t.Fatalf("Receipts = %d, want 5", len(rs))
	}
	if i, err := VerifyChain(rs, func(a common.Address) bool { return a == l.Signer() }); i != -1 {
		t.Fatalf("VerifyChain = %d, %v", i, err)
	}
	for _, r := range rs {
		if got := gethDigest(t, sc.ReceiptTypedData(&r.Receipt)); got != r.Digest {
			t.Fatalf("receipt digest %s, apitypes %s", r.Digest.Hex(), got.Hex())
		}
	}
	if r1.Receipt.Index != 0 || rs[0].Digest != r1.Digest {
		t.Fatalf("first receipt = %+v, want index 0", r1.Receipt)
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		p, err := l.Proof(r.Receipt.Intent)
		if err != nil || !p.Verify() {
			t.Fatalf("Proof(%s) = %v, verify false", r.Receipt.Intent.Hex(), err)
		}
	}

	// Cancel: a's intents below 100 stop working.
	c := CancelIntents{Owner: a.addr, NonceFloor: 100, Deadline: deadline}
	csig, _ := Sign(sc.CancelDigest(&c), a.key)
	if err := l.CancelIntents(ctx, c, csig); err != nil {
		t.Fatal(err)
	}
	late := Transfer{Collection: "credits", Amount: 1, From: a.addr, To: b.addr, Nonce: 50, Deadline: deadline}
	lsig, _ := Sign(sc.TransferDigest(&late), a.key)
	if _, err := l.Transfer(ctx, late, lsig, nil); reasonOf(err) != ReasonNonceCancelled {
		t.Fatalf("Transfer below floor = %v, want %s", err, ReasonNonceCancelled)
	}

	// A second node on the same stream mints nothing again and sees it all.
	l2 := newTestLedger(t, st, "n2", colls)
	if owner, _, _ := l2.view.owner("badges", "one"); owner != a.addr {
		t.Fatalf("node 2 sees owner %s, want a", owner.Hex())
	}
	if bal, _ := l2.view.balance("credits", a.addr); bal != 100-30-10 {
		t.Fatalf("node 2 balance of a = %d, want 60", bal)
	}
}

// TestRefusedTransferReleasesNonce makes a unique transfer lose its asset
// between spending its nonce and writing the asset (another transfer runs
// in its authorize step), and checks that the nonce is free again, on this
// node and another, for a unique or a fungible intent, and spent once for
// good after that.
func TestRefusedTransferReleasesNonce(t *testing.T) {
	ctx := context.Background()
	a, b, c := newWallet(t), newWallet(t), newWallet(t)
	colls := []Collection{
		{ID: "badges", Kind: Unique, Items: []ItemMint{{"one", a.addr}}},
		{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 100}}},
	}
	st := testStore(t)
	l := newTestLedger(t, st, "n1", colls)
	sc := l.Scheme()
	deadline := uint64(time.Now().Add(time.Hour).Unix())
	sign := func(tr Transfer, w wallet) Signature {
		s, _ := Sign(sc.TransferDigest(&tr), w.key)
		return s
	}

	lost := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 1, Deadline: deadline}
	first := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: c.addr, Nonce: 2, Deadline: deadline}
	overtake := func(ctx context.Context, _ Check) error {
		_, err := l.Transfer(ctx, first, sign(first, a), nil)
		return err
	}
	if _, err := l.Transfer(ctx, lost, sign(lost, a), overtake); !errors.Is(err, ErrConflict) {
		t.Fatalf("Transfer overtaken after its checks = %v, want ErrConflict", err)
	}
	if owner, _, _ := l.view.owner("badges", "one"); owner != c.addr {
		t.Fatalf("owner of one = %s, want c (the overtaking transfer)", owner.Hex())
	}

	// The released nonce spends again, through another node and a batch.
	l2 := newTestLedger(t, st, "n2", colls)
	pay := Transfer{Collection: "credits", Amount: 5, From: a.addr, To: b.addr, Nonce: 1, Deadline: deadline}
	if _, err := l2.Transfer(ctx, pay, sign(pay, a), nil); err != nil {
		t.Fatalf("fungible Transfer with the released nonce = %v, want success", err)
	}
	again := Transfer{Collection: "credits", Amount: 5, From: a.addr, To: c.addr, Nonce: 1, Deadline: deadline}
	if _, err := l.Transfer(ctx, again, sign(again, a), nil); reasonOf(err) != ReasonNonceUsed {
		t.Fatalf("second intent with the re-spent nonce = %v, want %s", err, ReasonNonceUsed)
	}
	replay := Transfer{Collection: "credits", Amount: 7, From: a.addr, To: c.addr, Nonce: 2, Deadline: deadline}
	if _, err := l2.Transfer(ctx, replay, sign(replay, a), nil); reasonOf(err) != ReasonNonceUsed {
		t.Fatalf("intent with the applied transfer's nonce = %v, want %s", err, ReasonNonceUsed)
	}

	// A unique transfer takes a released nonce too.
	back := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: c.addr, To: a.addr, Nonce: 1, Deadline: deadline}
	if _, err := l.Transfer(ctx, back, sign(back, c), nil); err != nil {
		t.Fatal(err)
	}
	lost2 := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: b.addr, Nonce: 3, Deadline: deadline}
	first2 := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: a.addr, To: c.addr, Nonce: 4, Deadline: deadline}
	overtake2 := func(ctx context.Context, _ Check) error {
		_, err := l.Transfer(ctx, first2, sign(first2, a), nil)
		return err
	}
	if _, err := l.Transfer(ctx, lost2, sign(lost2, a), overtake2); !errors.Is(err, ErrConflict) {
		t.Fatalf("second overtaken Transfer = %v, want ErrConflict", err)
	}
	back2 := Transfer{Collection: "badges", AssetID: "one", Amount: 1, From: c.addr, To: a.addr, Nonce: 2, Deadline: deadline}
	if _, err := l2.Transfer(ctx, back2, sign(back2, c), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Transfer(ctx, lost2, sign(lost2, a), nil); err != nil {
		t.Fatalf("refused intent applied later through another node = %v, want success (its nonce was released)", err)
	}
	if _, err := l.Transfer(ctx, lost2, sign(lost2, a), nil); err == nil {
		t.Fatal("the same intent applied twice")
	}
}

// testRecordKey authenticates the test stores' sealed records, as the
// realm's record key does.
var testRecordKey = []byte("zerorealm test record key 32 by!")
