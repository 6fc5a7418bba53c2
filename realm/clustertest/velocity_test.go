package clustertest

import (
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestSplitTransfersOnTwoNodesCannotBothPass sends the two halves of a
// high-value transfer at once, from two wallets of one avatar, one through
// each of two realm nodes: they share no balance and no nonce, only the
// avatar's velocity, and exactly one goes through.
func TestSplitTransfersOnTwoNodesCannotBothPass(t *testing.T) {
	a, b := nodes.TwoOnCluster(t)
	ada := realmtest.NewMarketUser(t, a, "ada")
	bob := realmtest.NewMarketUser(t, a, "bob")
	key2, wallet2 := ada.LinkWallet(t)
	realmtest.Mint(t, a, "credits", "", ada.Wallet, 20_000)
	realmtest.Mint(t, a, "credits", "", wallet2, 20_000)
	realmtest.Eventually(t, "node b to see both wallets funded and linked", func() bool {
		w1, _ := realmtest.BalanceOf(b, "credits", ada.Wallet)
		w2, _ := realmtest.BalanceOf(b, "credits", wallet2)
		wallets, _ := realmtest.Probe(b).Ledger().Addresses(ada.Sess.Avatar["id"].(string))
		return w1 == 20_000 && w2 == 20_000 && len(wallets) == 2
	})
	bodies := []map[string]any{
		ada.SignedTransfer(t, realmtest.Intent("credits", "", 6_000, ada.Wallet, bob.Wallet, 1, realmtest.DeadlineIn(time.Hour)), ada.Key),
		ada.SignedTransfer(t, realmtest.Intent("credits", "", 6_000, wallet2, bob.Wallet, 1, realmtest.DeadlineIn(time.Hour)), key2),
	}
	type answer struct {
		code int
		p    edge.Problem
	}
	answers := make(chan answer, 2)
	start := make(chan struct{})
	for i, node := range []*realm.Realm{a, b} {
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
