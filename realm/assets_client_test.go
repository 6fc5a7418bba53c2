package realm

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/clients/market"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// TestMarketClient drives the Go marketplace client against a real realm:
// link a wallet, transfer, fetch the proof and verify the receipt offline.
func TestMarketClient(t *testing.T) {
	r := startMarket(t)
	ctx := context.Background()
	sess := newClient(t, r).Register(webauthntest.New(), "client")
	c := market.New(r.URL(), sess.Token)
	key, _ := crypto.GenerateKey()
	if err := c.LinkWallet(ctx, market.KeySigner(key)); err != nil {
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
	req, err := c.SignTransfer(ctx, tr, market.KeySigner(key))
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
	// The intent is its own identity: without a key it answers its
	// receipt too.
	if again, err := c.Transfer(ctx, req, ""); err != nil || again.Receipt.Digest != ans.Receipt.Digest {
		t.Fatalf("resubmitted without a key = %+v, %v; want the same receipt", again, err)
	}
	d, err := c.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.market.Ledger().Checkpoint(ctx); err != nil {
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

// TestMarketClientWithAKeystoreSigner drives the client with a signer
// that is not a raw key: an encrypted go-ethereum keystore behind
// SignerFunc, as a wallet or remote signer would be. It links the wallet,
// mints to it (admin), cancels a signed transfer before it is applied,
// and is refused minting as a non-admin and a signature by another key.
func TestMarketClientWithAKeystoreSigner(t *testing.T) {
	r := startMarket(t)
	ctx := context.Background()
	// The first avatar of a realm becomes its administrator.
	admin := market.New(r.URL(), newClient(t, r).Register(webauthntest.New(), "keeper").Token)
	c := market.New(r.URL(), newClient(t, r).Register(webauthntest.New(), "holder").Token)

	ks := keystore.NewKeyStore(t.TempDir(), keystore.LightScryptN, keystore.LightScryptP)
	account, err := ks.NewAccount("keystore passphrase")
	if err != nil {
		t.Fatal(err)
	}
	wallet := market.SignerFunc(account.Address, func(_ context.Context, digest common.Hash) ([]byte, error) {
		return ks.SignHashWithPassphrase(account, "keystore passphrase", digest[:])
	})
	if err := c.LinkWallet(ctx, wallet); err != nil {
		t.Fatalf("LinkWallet with the keystore: %v", err)
	}
	w, err := c.Wallet(ctx)
	if err != nil || len(w.Wallets) != 1 || w.Wallets[0].Address != account.Address.Hex() {
		t.Fatalf("Wallet = %+v, %v; want the keystore's address", w, err)
	}

	if _, err := admin.Mint(ctx, "relics", "lantern", account.Address.Hex(), ""); err != nil {
		t.Fatalf("Mint as the administrator: %v", err)
	}
	var p *market.Problem
	if _, err := c.Mint(ctx, "relics", "forged", account.Address.Hex(), ""); !errors.As(err, &p) || p.Status != http.StatusForbidden {
		t.Fatalf("Mint without the admin role = %v, want 403", err)
	}

	tr := market.Transfer{Collection: "relics", AssetID: "lantern", Amount: "1", From: account.Address.Hex(),
		To: "0x0000000000000000000000000000000000000B0b", Nonce: w.Wallets[0].NextNonce, Deadline: deadlineIn(time.Hour)}
	signed, err := c.SignTransfer(ctx, tr, wallet)
	if err != nil {
		t.Fatalf("SignTransfer with the keystore: %v", err)
	}
	// Changed their mind: cancel every intent below the next nonce + 1.
	floor := new(big.Int).Add(mustBig(t, tr.Nonce), big.NewInt(1)).String()
	cancel, err := c.SignCancel(ctx, market.Cancel{Owner: account.Address.Hex(), NonceFloor: floor, Deadline: deadlineIn(time.Hour)}, wallet)
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.CancelIntents(ctx, cancel)
	if err != nil || next != floor {
		t.Fatalf("CancelIntents = %q, %v; want next nonce %s", next, err, floor)
	}
	if _, err := c.Transfer(ctx, signed, ""); !errors.As(err, &p) || p.Reason() != string(assets.ReasonNonceCancelled) {
		t.Fatalf("the cancelled transfer = %v, want %s", err, assets.ReasonNonceCancelled)
	}
	if h, err := c.Holdings(ctx, account.Address.Hex()); err != nil || len(h.Items) != 1 {
		t.Fatalf("Holdings after the cancelled transfer = %+v, %v; want the lantern still", h, err)
	}

	// A signer that answers with another key's signature is caught by the
	// client, before the realm sees it.
	stranger, _ := crypto.GenerateKey()
	impostor := market.SignerFunc(account.Address, market.KeySigner(stranger).SignDigest)
	tr.Nonce = floor
	if _, err := c.SignTransfer(ctx, tr, impostor); !errors.Is(err, market.ErrBadSignature) {
		t.Fatalf("SignTransfer with another key's signature = %v, want ErrBadSignature", err)
	}
	signers, err := c.ReceiptSigners(ctx)
	if err != nil || len(signers) == 0 || !signers[0].Current {
		t.Fatalf("ReceiptSigners = %+v, %v", signers, err)
	}
}

func mustBig(t *testing.T, decimal string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(decimal, 10)
	if !ok {
		t.Fatalf("%q is not a decimal number", decimal)
	}
	return n
}
