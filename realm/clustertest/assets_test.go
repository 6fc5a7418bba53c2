package clustertest

import (
	"testing"

	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// marketScenes is the realm's test scene with a transferable unique
// collection, a soulbound one and a fungible one.
const marketScenes = "../testdata"

func TestConcurrentTransfersTwoNodes(t *testing.T) {
	a, b := nodes.TwoOnClusterWith(t, realm.Config{ScenesDir: marketScenes})
	ada := realmtest.NewMarketUser(t, a, "ada")
	realmtest.Mint(t, a, "relics", "orb", ada.Wallet, 0)
	// b sees the mint through its own projection.
	realmtest.Eventually(t, "node b sees the mint", func() bool { _, err := realmtest.Probe(b).Ledger().Asset("relics", "orb"); return err == nil })
	ok, codes := realmtest.RaceTransfers(t, []string{a.URL(), b.URL()}, ada, "orb", 100)
	if ok != 1 {
		t.Fatalf("100 concurrent transfers through two nodes: statuses %v, want exactly one 201", codes)
	}
	for _, r := range []*realm.Realm{a, b} {
		r := r
		realmtest.Eventually(t, "both nodes see one transfer", func() bool { x, _ := realmtest.Probe(r).Ledger().Asset("relics", "orb"); return len(x.History) == 2 })
	}
}
