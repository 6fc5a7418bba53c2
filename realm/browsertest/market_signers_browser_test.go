package browsertest

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestMarketVerifiesReceiptsOfARetiredKey: a receipt signed before the
// node's key was rotated still verifies in the console after the node
// restarts with the new key, because the console trusts the realm's
// published signers (GET /v1/assets/signers) and lists them.
func TestMarketVerifiesReceiptsOfARetiredKey(t *testing.T) {
	// One port for both runs: the console's origin, its cookie and its
	// remembered receipts stay the same across the restart.
	l, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	const pass = "market-signers-passphrase"
	cfg := realm.Config{Listen: net.JoinHostPort("localhost", strconv.Itoa(port)), DataDir: t.TempDir(), ScenesDir: marketScenes,
		Assets: realm.AssetsConfig{KeyPassphrase: pass, KeyScryptN: keystore.LightScryptN}}
	r, stop := nodes.Run(t, cfg)

	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(120 * time.Second)
	defer cancel()
	page := b.Page(ctx, t, `JSON.stringify(document.body.dataset) + " " + `+pageResults)
	graceWallet := registerWithWallet(page, r, "grace", "Grace")

	// Ada gives grace a relic: its receipt is signed by the node's key.
	ada := realmtest.NewMarketUser(t, r, "ada")
	realmtest.Mint(t, r, "relics", "vase", ada.Wallet, 0)
	var tr realmtest.TransferReply
	ada.C.Must("POST", "/v1/assets/transfers", ada.SignedTransfer(t, realmtest.Intent("relics", "vase", 1, ada.Wallet, graceWallet, 1, realmtest.DeadlineIn(time.Hour)), ada.Key), &tr)
	oldKey := tr.Receipt.Signer

	// The key is rotated and the node restarts with the new one.
	stop()
	ring, err := assets.OpenKeyRing(filepath.Join(cfg.DataDir, "keys"), pass, keystore.LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Rotate(); err != nil {
		t.Fatal(err)
	}
	r2, _ := nodes.Run(t, cfg)
	var dom struct{ Signer string }
	if code := realmtest.Get(t, r2.URL()+"/v1/assets/domain", &dom); code != 200 || dom.Signer == oldKey {
		t.Fatalf("after the rotation the node signs with %s (%d), want a key other than %s", dom.Signer, code, oldKey)
	}

	page.Do("reload the console", chromedp.Reload())
	page.WaitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-in"`)
	page.Do("open the market", chromedp.Click(chromedp.CSS(`nav a[href="#/market"]`)))
	page.WaitFor("the receipt chain button", `document.body.dataset.shown === "market" && !!document.getElementById("receipts-chain") && document.getElementById("view-market").textContent.includes("Trusted: `+dom.Signer+`,")`)
	row := `#receipts li.receipt[data-digest="` + strings.ToLower(tr.Receipt.Digest) + `"]`
	page.Do("browse the chain", chromedp.Click(chromedp.CSS("#receipts-chain")))
	page.WaitFor("the relic's receipt", `document.querySelector('`+row+` button.verify') !== null`)
	if got := page.Eval(`(document.querySelector('#published-signers li[data-address="` + oldKey + `"]') || {}).dataset?.current || ""`); got != "false" {
		t.Fatalf("the market lists the retired key %s as %q, want it shown as retired; note: %s", oldKey, got, page.Eval(`[...document.querySelectorAll("#view-market .ops-sub")].map((e) => e.textContent).join(" | ")`))
	}
	page.Do("verify", chromedp.Click(chromedp.CSS(row+" button.verify")))
	page.WaitFor("verified", `document.querySelector('`+row+`[data-verified]') !== null`)
	if v, detail := page.Eval(`document.querySelector('`+row+`').dataset.verified`), page.Eval(`document.querySelector('`+row+` .verify-detail').textContent`); v != "true" || !strings.Contains(detail, oldKey[:8]) {
		t.Fatalf("the receipt signed by the retired key: verified %s, %q; want it verified, signed by %s", v, detail, oldKey)
	}
}
