package realm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/clients/market"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// TestMarketClient drives the Go marketplace client against a real realm:
// link a wallet, transfer, fetch the proof and verify the receipt offline.
func TestMarketClient(t *testing.T) {
	r := startMarket(t)
	ctx := context.Background()
	sess := newClient(t, r).register(webauthntest.New(), "client")
	c := market.New(r.URL(), sess.Token)
	key, _ := crypto.GenerateKey()
	if err := c.LinkWallet(ctx, key); err != nil {
		t.Fatalf("LinkWallet: %v", err)
	}
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	mint(t, r, "relics", "bell", wallet, 0)
	h, err := c.Holdings(ctx, wallet.Hex())
	if err != nil || len(h.Items) != 1 {
		t.Fatalf("Holdings = %+v, %v; want the bell", h, err)
	}
	tr := market.Transfer{Collection: "relics", AssetID: "bell", Amount: "1", From: wallet.Hex(),
		To: "0x0000000000000000000000000000000000000B0b", Nonce: h.NextNonce, Deadline: deadlineIn(time.Hour)}
	req, err := c.SignTransfer(ctx, tr, key)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := c.Transfer(ctx, req, "bell-1")
	if err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	again, err := c.Transfer(ctx, req, "bell-1")
	if err != nil || again.Receipt.Digest != ans.Receipt.Digest {
		t.Fatalf("idempotent retry = %+v, %v; want the same receipt", again, err)
	}
	_, err = c.Transfer(ctx, req, "")
	var p *market.Problem
	if !errors.As(err, &p) || p.Reason() != "not-owner" {
		t.Fatalf("replay without a key = %v, want a not-owner problem", err)
	}
	d, err := c.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.assets.ledger.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	doc, err := c.Proof(ctx, ans.Digest)
	if err != nil || len(doc.Proof) == 0 {
		t.Fatalf("Proof = %+v, %v", doc, err)
	}
	if signer, err := market.VerifyReceipt(doc, d.Signer); err != nil || signer != d.Signer {
		t.Fatalf("VerifyReceipt = %s, %v; want %s", signer, err, d.Signer)
	}
	if _, err := market.VerifyReceipt(doc, "0x0000000000000000000000000000000000000001"); !errors.Is(err, market.ErrUntrustedSigner) {
		t.Fatalf("VerifyReceipt with another trusted key = %v, want ErrUntrustedSigner", err)
	}
}
