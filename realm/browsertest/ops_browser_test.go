package browsertest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestConsoleOpsBrowser drives the twin console and the marketplace in
// headless Chromium beyond the story's low-risk path: a high-risk command
// confirmed with a passkey bound to its hash, a command the policy refuses
// with its reason, a critical command of another operator approved from the
// approvals queue with the approver's own passkey, and a transfer whose
// receipt the page verifies with its inclusion proof in a signed
// checkpoint.
func TestConsoleOpsBrowser(t *testing.T) {
	r := nodes.Start(t, realm.Config{Listen: "localhost:0", Assets: realm.AssetsConfig{CheckpointInterval: 500 * time.Millisecond}})
	realmtest.WaitTwinsLive(t, r)
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(90 * time.Second)
	defer cancel()

	page := b.Page(ctx, t, `location.hash + " " + JSON.stringify(document.body.dataset) + "\n" + `+pageResults)
	page.Wait = 20 * time.Second
	set := func(sel, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector(` + strconv.Quote(sel) + `);
			e.value = ` + strconv.Quote(value) + `; e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); })()`)
	}
	// Screenshots of the views with their results go with the story's,
	// when CI keeps artifacts.
	screenshot := func(name string) {
		t.Helper()
		dir := os.Getenv("ZR_ARTIFACTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ops-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	open := func(view string) {
		t.Helper()
		page.Do("open "+view, chromedp.Click(chromedp.CSS(`nav a[href="#/`+view+`"]`)))
		page.WaitFor("show "+view, `document.body.dataset.shown === `+strconv.Quote(view))
		// A view opens at its top, as after a click in the menu: the scroll
		// of the view before would otherwise leave the form under the
		// sticky header, where a click lands on the header's link.
		page.Do("scroll "+view+" to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	}
	// walk goes to the scene view, walks into the zone with its button and
	// comes back to the twin console, which must show the zone the realm
	// now sees the avatar in: the zone the next command is decided with.
	walk := func(zone string) {
		t.Helper()
		open("scene")
		page.Do("walk into "+zone, chromedp.Click(chromedp.CSS("#zone-"+zone)))
		page.WaitFor("the realm admits the avatar into "+zone, `document.getElementById("scene-membership").dataset.zone === `+strconv.Quote(zone))
		open("twins")
		page.WaitFor("the twin console shows "+zone, `document.getElementById("command-zone").dataset.zone === `+strconv.Quote(zone))
	}
	// command fills the twin console's form, sends it and waits for a
	// decision other than the one shown before.
	command := func(twinID, actuator, value string) (decision, status, reasons string) {
		t.Helper()
		page.Do("command "+twinID+"/"+actuator,
			set("#twin-select", twinID), set("#actuator-select", actuator), set("#command-op", "set"),
			set("#command-value", value), set("#command-reason", "ops browser test"),
			chromedp.Evaluate[chromedp.Void](`delete document.getElementById("command-result").dataset.decision`),
			chromedp.Click(chromedp.CSS("#command-send")))
		page.WaitFor("decision on "+actuator, `["allow", "deny"].includes(document.getElementById("command-result").dataset.decision)`)
		return page.Eval(`document.getElementById("command-result").dataset.decision`),
			page.Eval(`document.getElementById("command-result").dataset.status`),
			page.Eval(`[...document.querySelectorAll("#command-result .reason")].map((e) => e.textContent).join(" | ")`)
	}

	page.Do("open the console", chromedp.Navigate(r.URL()))
	page.WaitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-out"`)
	page.Do("register", chromedp.SendKeys(chromedp.CSS("#name"), "ada"), chromedp.SendKeys(chromedp.CSS("#display"), "Ada Lovelace"),
		chromedp.Click(chromedp.CSS("#register")))
	page.WaitFor("signed in", `document.body.dataset.state === "signed-in"`)

	// The console's avatar joins the foundry; its zone is where the realm
	// admits it, and the twin console shows it read-only.
	open("twins")
	page.WaitFor("twins listed", `[...document.querySelectorAll("#twin-select option")].some((o) => o.value === "press-1")`)
	page.WaitFor("the twin console shows the avatar in no scene", `document.getElementById("command-zone").dataset.present === "false"`)
	open("scene")
	page.Do("join the foundry", chromedp.Click(chromedp.CSS("#scene-join")))
	page.WaitFor("joined", `document.getElementById("scene-membership").dataset.joined === "true"`)

	// High risk, from the control room: the page asks for the command's
	// digest, steps up bound to it, then sends; the gateway carries it out.
	walk("control-room")
	if d, s, why := command("press-1", "ram", "20"); d != "allow" || s != "done" {
		t.Fatalf("high-risk ram command: %s %s (%s), want allow done", d, s, why)
	}
	// The policy refuses a command from where the operator cannot see the
	// machine, and the page shows why and where the realm sees them.
	walk("lobby")
	if d, _, why := command("conveyor-1", "belt-speed", "0.3"); d != "deny" || !strings.Contains(why, "no policy permits") || !strings.Contains(why, "the realm sees you in zone lobby") {
		t.Fatalf("command from the lobby: %s (%s), want deny with the policy's reason and the zone the realm sees", d, why)
	}

	// A critical command of another operator waits in the queue; the
	// console's avatar (a supervisor) approves it with its own passkey.
	bob := realmtest.NewOperator(t, r, "bob", "operator")
	realmtest.StandIn(t, r, bob, "control-room") // a headset of the Go SDK
	body := map[string]any{"op": "set", "value": 30, "reason": "raise pressure"}
	hash := bob.Digest(realmtest.PressurePath, "bob-1", body)
	if status, _ := bob.StepUp(bob.Auth, hash); status != 200 {
		t.Fatal("bob's step-up failed")
	}
	if status, p, _, _ := bob.Command(realmtest.PressurePath, "bob-1", body); status != 202 {
		t.Fatalf("bob's critical command = %d %+v, want 202", status, p)
	}
	sel := `#approvals li[data-id="` + hash + `"] button.approve`
	page.WaitFor("the approval is listed", `document.querySelector(`+strconv.Quote(sel)+`) !== null`)
	page.Do("approve", chromedp.Evaluate[chromedp.Void](`delete document.getElementById("command-result").dataset.decision`),
		chromedp.Click(chromedp.CSS(sel)))
	page.WaitFor("the approved command is carried out", `document.getElementById("command-result").dataset.status === "done"`)
	page.WaitFor("the queue is empty", `document.querySelector("#approvals li[data-id]") === null`)
	screenshot("twins")

	// Market: a custodial wallet, credits minted by the administrator, a
	// transfer confirmed with the passkey, its receipt verified with the
	// inclusion proof once a checkpoint covers it.
	open("market")
	page.WaitFor("wallet button", `document.getElementById("wallet-create") !== null`)
	page.Do("create wallet", chromedp.Click(chromedp.CSS("#wallet-create")))
	page.WaitFor("wallet address", `/^0x[0-9a-fA-F]{40}$/.test(document.getElementById("wallet-address").textContent)`)
	page.Do("mint", set("#mint-collection", "credits"), set("#mint-amount", "10000"), chromedp.Click(chromedp.CSS("#mint-send")))
	page.WaitFor("minted", `document.querySelector('#holdings li[data-collection="credits"][data-balance="10000"]') !== null`)
	// A mistyped mixed-case address is caught by its checksum before any
	// intent is made.
	page.Do("transfer to a mistyped address", set("#transfer-collection", "credits"), set("#transfer-amount", "2500"),
		set("#transfer-to", "0x00000000000000000000000000000000000Dead0"), chromedp.Click(chromedp.CSS("#transfer-send")))
	page.WaitFor("refused", `document.getElementById("transfer-result").dataset.status === "error"`)
	if got := page.Eval(`document.getElementById("transfer-result").textContent`); !strings.Contains(got, "EIP-55") {
		t.Fatalf("mistyped address: %q, want the checksum named", got)
	}
	page.Do("transfer", set("#transfer-to", "0x00000000000000000000000000000000000dEAD0"),
		chromedp.Evaluate[chromedp.Void](`delete document.getElementById("transfer-result").dataset.status`),
		chromedp.Click(chromedp.CSS("#transfer-send")))
	page.WaitFor("transferred", `document.getElementById("transfer-result").dataset.status !== undefined`)
	if s := page.Eval(`document.getElementById("transfer-result").dataset.status`); s != "ok" {
		t.Fatalf("transfer: %s: %s", s, page.Eval(`document.getElementById("transfer-result").textContent`))
	}
	if got := page.Eval(`document.getElementById("transfer-intent").textContent`); !strings.Contains(got, "25.00 Foundry credits") {
		t.Fatalf("the intent shown for confirmation reads %q, want the amount in credits", got)
	}
	page.WaitFor("balance after the transfer", `document.querySelector('#holdings li[data-collection="credits"][data-balance="7500"]') !== null`)
	digest := page.Eval(`document.querySelector("#receipts li.receipt").dataset.digest`)
	realmtest.Eventually(t, "the receipt in a checkpoint", func() bool {
		code, _ := bob.Call("GET", "/v1/receipts/"+digest+"/proof", nil, nil)
		return code == 200
	})
	page.Do("verify", chromedp.Click(chromedp.CSS("#receipts li.receipt button.verify")))
	page.WaitFor("verified", `document.querySelector("#receipts li.receipt[data-verified]") !== null`)
	if v, detail := page.Eval(`document.querySelector("#receipts li.receipt").dataset.verified`), page.Eval(`document.querySelector("#receipts li.receipt .verify-detail").textContent`); v != "true" || !strings.Contains(detail, "leaf") {
		t.Fatalf("receipt verification: %s %q, want true with its place in the checkpoint", v, detail)
	}
	screenshot("market")
}
