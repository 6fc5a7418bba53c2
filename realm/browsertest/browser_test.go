package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestBrowserPasskeyPages walks the realm's own pages in headless Chromium
// with a virtual authenticator: register, sign out, sign in with the
// passkey (no handle: discoverable), and step up bound to an action digest.
// The browser makes every credential; the realm verifies it.
// pageResults is JavaScript that reads every action result the console
// shows (each beside its action), one a line as "label: text".
const pageResults = `[...document.querySelectorAll("[data-result]")].map((e) => e.dataset.result + ": " + e.textContent).join("\n")`

// resultJSON is JavaScript that reads the JSON an action's result folds
// under its details.
func resultJSON(label string) string {
	return `(document.querySelector('[data-result="` + label + `"] pre') || {}).textContent || ""`
}

func TestBrowserPasskeyPages(t *testing.T) {
	r := nodes.StartLocal(t)
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(60 * time.Second)
	defer cancel()

	shots := os.Getenv("ZR_ARTIFACTS")
	step := 0
	// act clicks a control, waits for the page to report the action's
	// outcome, and fails with what the page showed if it was not ok.
	act := func(label string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		all := append([]chromedp.Action[chromedp.Void]{chromedp.Evaluate[chromedp.Void](`delete document.body.dataset.last`)}, actions...)
		if err := chromedp.Do(ctx, all...); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		last, err := chromedp.Run(ctx, chromedp.Poll[string](`document.body.dataset.last`))
		if err != nil {
			shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](pageResults+` + " | " + JSON.stringify(document.body.dataset) + " | digest " + JSON.stringify((document.getElementById("digest") || {}).value) + " valid " + ((document.getElementById("digest") || {}).validity || {}).valid + " banners " + [...document.querySelectorAll(".banner")].map((b) => b.id + ":" + b.hidden).join(",") + " active " + (document.activeElement && document.activeElement.id)`))
			t.Fatalf("%s: waiting for the page: %v (page shows: %s)", label, err, shown)
		}
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](pageResults))
		if last != label+":ok" {
			t.Fatalf("%s: page reports %q: %s", label, last, status)
		}
		step++
		if shots != "" {
			if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				_ = os.MkdirAll(shots, 0o755)
				_ = os.WriteFile(filepath.Join(shots, fmt.Sprintf("passkeys-%02d-%s.png", step, label)), png, 0o644)
			}
		}
	}
	state := func() string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.state`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// A laptop's screen: at the headless default (800 x 600) the sticky
	// header, wrapped in two rows, can sit over a control chromedp clicks.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 860), chromedp.Navigate(r.URL())); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.ready === "1"`)); err != nil {
		t.Fatal(err)
	}

	act("register",
		chromedp.SendKeys(chromedp.CSS("#name"), "grace"),
		chromedp.SendKeys(chromedp.CSS("#display"), "Grace Hopper"),
		chromedp.Click(chromedp.CSS("#register")))
	if s := state(); s != "signed-in" {
		t.Fatalf("after register the page is %q, want signed-in", s)
	}
	name, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#me-name")))
	if !strings.Contains(name, "@grace") {
		t.Fatalf("signed in as %q, want grace", name)
	}

	act("sign-out", chromedp.Click(chromedp.CSS("#signout")))
	if s := state(); s != "signed-out" {
		t.Fatalf("after sign-out the page is %q, want signed-out", s)
	}

	act("sign-in", chromedp.Click(chromedp.CSS("#signin")))
	if s := state(); s != "signed-in" {
		t.Fatalf("after sign-in the page is %q, want signed-in", s)
	}

	act("step-up",
		chromedp.SendKeys(chromedp.CSS("#digest"), realmtest.DigestA),
		chromedp.Click(chromedp.CSS("#stepup")))
	status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](resultJSON("step-up")))
	if !strings.Contains(status, realmtest.DigestA) || !strings.Contains(status, `"verified": true`) {
		t.Fatalf("step-up result %q, want verified and bound to %s", status, realmtest.DigestA)
	}

	// The virtual authenticator holds one passkey; the realm knows it and
	// audited every step.
	if n := len(b.Credentials(t)); n != 1 {
		t.Fatalf("authenticator holds %d passkeys, want 1", n)
	}
	av, err := realmtest.Probe(r).Avatars.ByName(context.Background(), "grace")
	if err != nil || len(av.Credentials) != 1 {
		t.Fatalf("avatar grace = %+v, %v; want one passkey", av, err)
	}
	realmtest.Eventually(t, "every step is audited", func() bool {
		seen := map[string]bool{}
		for _, ev := range realmtest.Probe(r).Audit.Events(audit.Query{Actor: av.ID, Outcome: audit.Allow, Limit: 100}) {
			seen[ev.Action] = true
		}
		return seen["RegisterPasskey"] && seen["SignOut"] && seen["SignIn"] && seen["StepUp"]
	})
}

// registerWithWallet opens the console of node r in the page, registers
// name with the browser's passkey and creates the avatar's custodial
// wallet in the market view, and returns its address.
func registerWithWallet(page *browsertest.Page, r *realm.Realm, name, display string) common.Address {
	page.T().Helper()
	page.Do("open the console", chromedp.Navigate(r.URL()))
	page.WaitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-out"`)
	page.Do("register "+name, chromedp.SendKeys(chromedp.CSS("#name"), name), chromedp.SendKeys(chromedp.CSS("#display"), display), chromedp.Click(chromedp.CSS("#register")))
	page.WaitFor("signed in", `document.body.dataset.state === "signed-in"`)
	page.Do("open the market", chromedp.Click(chromedp.CSS(`nav a[href="#/market"]`)))
	page.WaitFor("wallet button", `document.getElementById("wallet-create") !== null`)
	page.Do("create a custodial wallet", chromedp.Click(chromedp.CSS("#wallet-create")))
	page.WaitFor("wallet address", `/^0x[0-9a-fA-F]{40}$/.test(document.getElementById("wallet-address").textContent)`)
	return common.HexToAddress(page.Eval(`document.getElementById("wallet-address").textContent`))
}
