package market_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/clients/market"
)

// The examples need a running realm and a session token (from a passkey
// sign-in), so they are compiled but not run; the realm's tests drive the
// same calls against a real realm.

// Link a wallet to the signed-in avatar: the wallet signs an EIP-712
// LinkWallet message.
func ExampleClient_LinkWallet() {
	ctx := context.Background()
	c := market.New("http://localhost:8080", "zrs_session-token")
	key, _ := crypto.GenerateKey()
	wallet := market.KeySigner(key)
	if err := c.LinkWallet(ctx, wallet); err != nil {
		log.Fatal(err)
	}
	fmt.Println("linked", wallet.Address().Hex())
}

// Transfer an item: fetch the typed data, check and sign it like a wallet,
// and apply it with an idempotency key so a retry is safe.
func ExampleClient_Transfer() {
	ctx := context.Background()
	c := market.New("http://localhost:8080", "zrs_session-token")
	key, _ := crypto.GenerateKey()
	wallet := market.KeySigner(key)
	from := wallet.Address().Hex()
	h, err := c.Holdings(ctx, from)
	if err != nil {
		log.Fatal(err)
	}
	req, err := c.SignTransfer(ctx, market.Transfer{
		Collection: "relics", AssetID: "lamp", Amount: "1",
		From: from, To: "0x0000000000000000000000000000000000000B0b",
		Nonce: h.NextNonce, Deadline: "1900000000",
	}, wallet)
	if err != nil {
		log.Fatal(err)
	}
	answer, err := c.Transfer(ctx, req, "transfer-lamp-1")
	if err != nil {
		if p, ok := err.(*market.Problem); ok {
			log.Fatalf("refused (%s): %s", p.Reason(), p.Detail)
		}
		log.Fatal(err)
	}
	fmt.Println("applied at ledger sequence", answer.Sequence)
}

// Sign with a key kept elsewhere: a hardware wallet, a keystore or a
// remote signing service signs the 32-byte EIP-712 digest the client
// computed; the client checks the signature recovers to the address
// before it sends anything.
func ExampleSignerFunc() {
	ctx := context.Background()
	c := market.New("http://localhost:8080", "zrs_session-token")
	address := common.HexToAddress("0x00000000000000000000000000000000000A11CE")
	remote := market.SignerFunc(address, func(ctx context.Context, digest common.Hash) ([]byte, error) {
		return askTheSigningService(ctx, address, digest) // 65 bytes r || s || v
	})
	next, err := c.Wallet(ctx)
	if err != nil {
		log.Fatal(err)
	}
	cancel, err := c.SignCancel(ctx, market.Cancel{Owner: address.Hex(), NonceFloor: next.Wallets[0].NextNonce, Deadline: "1900000000"}, remote)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.CancelIntents(ctx, cancel); err != nil {
		log.Fatal(err)
	}
}

// askTheSigningService stands for a call to a remote signer or a device.
func askTheSigningService(context.Context, common.Address, common.Hash) ([]byte, error) {
	return nil, fmt.Errorf("no signing service in this example")
}

// Verify a receipt offline against the realm's published signer.
func ExampleVerifyReceipt() {
	ctx := context.Background()
	c := market.New("http://localhost:8080", "")
	d, err := c.Domain(ctx)
	if err != nil {
		log.Fatal(err)
	}
	doc, err := c.Proof(ctx, "0x<intent digest>")
	if err != nil {
		log.Fatal(err)
	}
	signer, err := market.VerifyReceipt(doc, d.Signer)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("receipt signed by", signer)
}
