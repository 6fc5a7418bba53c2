package realmtest

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// MarketUser is a signed-in avatar with a linked wallet and its key.
type MarketUser struct {
	C      *Client
	Auth   *webauthntest.Authenticator
	Sess   Session
	Key    *ecdsa.PrivateKey
	Wallet common.Address
}

// SignPayload checks the realm's typed data with go-ethereum's own EIP-712
// code, as a wallet would, and signs it.
func SignPayload(t testing.TB, raw json.RawMessage, digest string, key *ecdsa.PrivateKey) string {
	t.Helper()
	var td apitypes.TypedData
	if err := json.Unmarshal(raw, &td); err != nil {
		t.Fatalf("typed data %s: %v", raw, err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatalf("apitypes.TypedDataAndHash: %v", err)
	}
	if got := common.BytesToHash(h).Hex(); got != digest {
		t.Fatalf("digest by apitypes = %s, realm says %s", got, digest)
	}
	sig, err := assets.Sign(common.BytesToHash(h), key)
	if err != nil {
		t.Fatal(err)
	}
	return sig.String()
}

// PayloadAnswer is the realm's typed data to sign and its digest.
type PayloadAnswer struct {
	TypedData json.RawMessage `json:"typed_data"`
	Digest    string          `json:"digest"`
}

// NewMarketUser registers an avatar on node n and links a new wallet to it.
func NewMarketUser(t testing.TB, n Node, name string) *MarketUser {
	t.Helper()
	c := NewClient(t, n.URL())
	u := &MarketUser{Auth: webauthntest.New()}
	u.Sess = c.Register(u.Auth, name)
	u.C = c.With(u.Sess.Token)
	u.Key, _ = crypto.GenerateKey()
	u.Wallet = crypto.PubkeyToAddress(u.Key.PublicKey)
	var p PayloadAnswer
	u.C.Must("POST", "/v1/assets/wallet/link/payload", map[string]string{"wallet": u.Wallet.Hex()}, &p)
	var td apitypes.TypedData
	_ = json.Unmarshal(p.TypedData, &td)
	sig := SignPayload(t, p.TypedData, p.Digest, u.Key)
	u.C.Must("POST", "/v1/assets/wallet/link", map[string]any{"wallet": u.Wallet.Hex(), "deadline": td.Message["deadline"], "signature": sig}, nil)
	return u
}

// DeadlineIn is the deadline of an intent d from now.
func DeadlineIn(d time.Duration) string { return fmt.Sprint(time.Now().Add(d).Unix()) }

// Intent is a transfer intent as a client sends it.
func Intent(coll, item string, amount uint64, from, to common.Address, nonce uint64, deadline string) map[string]any {
	return map[string]any{"collection": coll, "assetId": item, "amount": fmt.Sprint(amount), "from": from.Hex(), "to": to.Hex(), "nonce": fmt.Sprint(nonce), "deadline": deadline}
}

// SignedTransfer gets the payload of an intent from the realm and signs it.
func (u *MarketUser) SignedTransfer(t testing.TB, in map[string]any, key *ecdsa.PrivateKey) map[string]any {
	t.Helper()
	var p PayloadAnswer
	u.C.Must("POST", "/v1/assets/intents/transfer", map[string]any{"intent": in}, &p)
	return map[string]any{"intent": in, "signature": SignPayload(t, p.TypedData, p.Digest, key)}
}

// TransferReply is the realm's answer to a transfer.
type TransferReply struct {
	Digest   string                 `json:"digest"`
	Sequence uint64                 `json:"sequence"`
	Receipt  assets.ReceiptDocument `json:"receipt"`
}

// Mint creates amount of an item for to on node n, as the marketplace's issuer would.
func Mint(t testing.TB, n Node, coll, item string, to common.Address, amount uint64) {
	t.Helper()
	if _, err := Probe(n).Ledger().Mint(context.Background(), coll, item, to, amount); err != nil {
		t.Fatalf("Mint(%s/%s): %v", coll, item, err)
	}
}

// BalanceOf is what node n's read model says a holds of collection coll,
// and whether it holds any.
func BalanceOf(n Node, coll string, a common.Address) (uint64, bool) {
	for _, b := range Probe(n).Ledger().BalancesOf(a) {
		if b.Collection == coll {
			return b.Balance, true
		}
	}
	return 0, false
}

// LinkWallet links one more wallet to the user's avatar.
func (u *MarketUser) LinkWallet(t testing.TB) (*ecdsa.PrivateKey, common.Address) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	var p PayloadAnswer
	u.C.Must("POST", "/v1/assets/wallet/link/payload", map[string]string{"wallet": addr.Hex()}, &p)
	var td apitypes.TypedData
	_ = json.Unmarshal(p.TypedData, &td)
	u.C.Must("POST", "/v1/assets/wallet/link", map[string]any{"wallet": addr.Hex(), "deadline": td.Message["deadline"], "signature": SignPayload(t, p.TypedData, p.Digest, key)}, nil)
	return key, addr
}

// RaceTransfers sends n different intents for one unique relic at once,
// spread over the nodes at urls, and counts the answers by status.
func RaceTransfers(t testing.TB, urls []string, u *MarketUser, item string, n int) (created int, codes map[int]int) {
	t.Helper()
	bodies := make([]map[string]any, n)
	for i := range bodies {
		to := common.BigToAddress(big.NewInt(int64(1000 + i)))
		bodies[i] = u.SignedTransfer(t, Intent("relics", item, 1, u.Wallet, to, uint64(100+i), DeadlineIn(time.Hour)), u.Key)
	}
	codes = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range bodies {
		c := *u.C
		c.Base = urls[i%len(urls)]
		wg.Go(func() {
			<-start
			code, _ := c.Call("POST", "/v1/assets/transfers", b, nil)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return codes[http.StatusCreated], codes
}

// CustodialWith gives the market user a custodial address on node n
// holding gems.
func CustodialWith(t testing.TB, n Node, u *MarketUser, gems uint64) common.Address {
	t.Helper()
	var w struct {
		Custodial struct {
			Address string `json:"address"`
		} `json:"custodial"`
	}
	u.C.Must("POST", "/v1/assets/wallet/custodial", nil, &w)
	a := common.HexToAddress(w.Custodial.Address)
	Mint(t, n, "gems", "", a, gems)
	return a
}

// VerifyReceipt checks a receipt as anyone can offline: its typed data
// hashes (go-ethereum's EIP-712) to its digest, and its signature
// recovers node n's receipt signer.
func VerifyReceipt(t testing.TB, n Node, doc assets.ReceiptDocument) {
	t.Helper()
	raw, _ := json.Marshal(doc.Receipt)
	var td apitypes.TypedData
	if err := json.Unmarshal(raw, &td); err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil || common.BytesToHash(h).Hex() != doc.Digest {
		t.Fatalf("receipt digest %s, hash by apitypes %x (%v)", doc.Digest, h, err)
	}
	sig := common.FromHex(doc.Signature)
	if len(sig) != 65 {
		t.Fatalf("receipt signature %q", doc.Signature)
	}
	sig[64] -= 27
	signer := Probe(n).Ledger().Signer()
	pub, err := crypto.SigToPub(h, sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != signer {
		t.Fatalf("receipt signed by %v (%v), want the realm's signer %s", pub, err, signer.Hex())
	}
}
