package realm

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// movableClock is the ledger's clock in a test: real time plus what the
// test has moved it on by.
type movableClock struct{ ahead atomic.Int64 }

func (c *movableClock) Now() time.Time          { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *movableClock) Advance(d time.Duration) { c.ahead.Add(int64(d)) }

// linkWallet links one more wallet to the user's avatar.
func linkWallet(t *testing.T, u *marketUser) (*ecdsa.PrivateKey, common.Address) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	var p payloadAnswer
	u.C.Must("POST", "/v1/assets/wallet/link/payload", map[string]string{"wallet": addr.Hex()}, &p)
	var td apitypes.TypedData
	_ = json.Unmarshal(p.TypedData, &td)
	u.C.Must("POST", "/v1/assets/wallet/link", map[string]any{"wallet": addr.Hex(), "deadline": td.Message["deadline"], "signature": signPayload(t, p.TypedData, p.Digest, key)}, nil)
	return key, addr
}

// TestSplitHighValueTransferIsRefused: in the foundry, a transfer of 100.00
// credits or more needs a recognised person. One such transfer is refused;
// so is the second of two smaller ones that together reach it, even from
// another wallet of the same avatar, with the velocity policy as the
// reason. Once the first has left the 24-hour window, the same transfer
// goes through.
func TestSplitHighValueTransferIsRefused(t *testing.T) {
	clock := &movableClock{}
	r := startRealm(t, Config{Listen: "localhost:0", Assets: AssetsConfig{Now: clock.Now}})
	ada := newMarketUser(t, r, "ada")
	bob := newMarketUser(t, r, "bob")
	key2, wallet2 := linkWallet(t, ada)
	mint(t, r, "credits", "", ada.Wallet, 20_000)
	mint(t, r, "credits", "", wallet2, 20_000)

	send := func(from common.Address, key *ecdsa.PrivateKey, amount, nonce uint64) (int, edge.Problem) {
		t.Helper()
		deadline := fmt.Sprint(clock.Now().Add(time.Hour).Unix())
		body := ada.SignedTransfer(t, intent("credits", "", amount, from, bob.Wallet, nonce, deadline), key)
		return ada.C.Call("POST", "/v1/assets/transfers", body, nil)
	}
	refusedBy := func(what string, code int, p edge.Problem, policy string) {
		t.Helper()
		if code != 403 || !strings.Contains(p.Detail, policy) {
			t.Fatalf("%s = %d %q, want 403 naming policy %s", what, code, p.Detail, policy)
		}
	}

	code, p := send(ada.Wallet, ada.Key, 12_000, 1)
	refusedBy("one transfer of 120.00", code, p, "high-value-transfer-needs-biometric")
	if code, p := send(ada.Wallet, ada.Key, 6_000, 2); code != 201 {
		t.Fatalf("first transfer of 60.00 = %d %+v, want 201", code, p)
	}
	code, p = send(wallet2, key2, 6_000, 1)
	refusedBy("second transfer of 60.00, from ada's other wallet", code, p, "high-value-velocity-needs-biometric")
	if strings.Contains(p.Detail, "high-value-transfer-needs-biometric") {
		t.Fatalf("the split transfer was refused as high value on its own: %q", p.Detail)
	}
	if bal, _ := balanceOf(r, "credits", bob.Wallet); bal != 6_000 {
		t.Fatalf("bob's balance = %d, want 6000", bal)
	}

	clock.Advance(24*time.Hour + time.Minute)
	if code, p := send(wallet2, key2, 6_000, 1); code != 201 {
		t.Fatalf("transfer of 60.00 a day later = %d %+v, want 201", code, p)
	}
	if bal, _ := balanceOf(r, "credits", bob.Wallet); bal != 12_000 {
		t.Fatalf("bob's balance = %d, want 12000", bal)
	}
}

// TestSplitTransfersOnTwoNodesCannotBothPass sends the two halves of a
// high-value transfer at once, from two wallets of one avatar, one through
// each of two realm nodes: they share no balance and no nonce, only the
// avatar's velocity, and exactly one goes through.
func TestSplitTransfersOnTwoNodesCannotBothPass(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	a, b := twoNodesWith(t, Config{})
	ada := newMarketUser(t, a, "ada")
	bob := newMarketUser(t, a, "bob")
	key2, wallet2 := linkWallet(t, ada)
	mint(t, a, "credits", "", ada.Wallet, 20_000)
	mint(t, a, "credits", "", wallet2, 20_000)
	eventually(t, "node b to see both wallets funded and linked", func() bool {
		w1, _ := balanceOf(b, "credits", ada.Wallet)
		w2, _ := balanceOf(b, "credits", wallet2)
		wallets, _ := b.market.Ledger().Addresses(ada.Sess.Avatar["id"].(string))
		return w1 == 20_000 && w2 == 20_000 && len(wallets) == 2
	})
	bodies := []map[string]any{
		ada.SignedTransfer(t, intent("credits", "", 6_000, ada.Wallet, bob.Wallet, 1, deadlineIn(time.Hour)), ada.Key),
		ada.SignedTransfer(t, intent("credits", "", 6_000, wallet2, bob.Wallet, 1, deadlineIn(time.Hour)), key2),
	}
	type answer struct {
		code int
		p    edge.Problem
	}
	answers := make(chan answer, 2)
	start := make(chan struct{})
	for i, node := range []*Realm{a, b} {
		c := *ada.C
		c.Base = node.URL()
		go func() {
			<-start
			code, p := c.Call("POST", "/v1/assets/transfers", bodies[i], nil)
			answers <- answer{code, p}
		}()
	}
	close(start)
	var allowed, refused int
	for range 2 {
		ans := <-answers
		switch {
		case ans.code == 201:
			allowed++
		case ans.code == 403 && strings.Contains(ans.p.Detail, "high-value-velocity-needs-biometric"):
			refused++
		default:
			t.Fatalf("transfer = %d %q, want 201 or 403 by the velocity policy", ans.code, ans.p.Detail)
		}
	}
	if allowed != 1 || refused != 1 {
		t.Fatalf("two halves of 120.00 through two nodes: %d allowed, %d refused; want 1 and 1", allowed, refused)
	}
}
