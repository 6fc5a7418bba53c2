package realm

import (
	"crypto/ecdsa"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// movableClock is the ledger's clock in a test: real time plus what the
// test has moved it on by.
type movableClock struct{ ahead atomic.Int64 }

func (c *movableClock) Now() time.Time          { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *movableClock) Advance(d time.Duration) { c.ahead.Add(int64(d)) }

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
	key2, wallet2 := ada.LinkWallet(t)
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
