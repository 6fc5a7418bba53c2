package realm

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/browsertest"
)

// TestAgentApprovalInConsole: an agent's transfer over its auto-approval
// value waits; its owner sees it arrive live in the console's Agents view,
// approves it with the passkey of headless Chromium's virtual
// authenticator (a step-up bound to that action), and the transfer
// completes with a receipt that verifies, in the page and here.
func TestAgentApprovalInConsole(t *testing.T) {
	r := startMarket(t)
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(120 * time.Second)
	defer cancel()
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitFor := func(what, js string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js)); err != nil {
			t.Fatalf("%s: %v (page: %s)", what, err, eval(`JSON.stringify(document.body.dataset) + " " + ((document.getElementById("status") || {}).textContent || "")`))
		}
	}

	do("open the console", chromedp.Navigate(r.URL()))
	waitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-out"`)
	do("register", chromedp.SendKeys(chromedp.CSS("#name"), "olga"), chromedp.SendKeys(chromedp.CSS("#display"), "Olga"), chromedp.Click(chromedp.CSS("#register")))
	waitFor("signed in", `document.body.dataset.state === "signed-in"`)
	do("open the market", chromedp.Click(chromedp.CSS(`nav a[href="#/market"]`)))
	waitFor("wallet button", `document.getElementById("wallet-create") !== null`)
	do("create a custodial wallet", chromedp.Click(chromedp.CSS("#wallet-create")))
	waitFor("wallet address", `/^0x[0-9a-fA-F]{40}$/.test(document.getElementById("wallet-address").textContent)`)
	custodial := common.HexToAddress(eval(`document.getElementById("wallet-address").textContent`))
	mint(t, r, "gems", "", custodial, 1000)
	olga, err := r.avatars.ByName(context.Background(), "olga")
	if err != nil {
		t.Fatal(err)
	}
	ag, chain := newTrader(t, r, olga.ID)

	do("open the Agents view", chromedp.Click(chromedp.CSS(`nav a[href="#/agents"]`)))
	waitFor("the Agents view", `document.body.dataset.shown === "agents" && document.getElementById("view-agents").dataset.loaded === "1"`)

	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	var p approval.View
	if a := ag.post("POST", "/v1/assets/transfers", agentTransfer("gems", 300, custodial, bob, 1), &p); a.status != http.StatusAccepted {
		t.Fatalf("the agent's transfer of 300 = %d %+v", a.status, a.problem)
	}
	row := `#agent-approvals li[data-approval="` + p.ID + `"]`
	waitFor("the waiting transfer, pushed live", `document.querySelector('`+row+` button[data-approve]') !== null`)
	if got := eval(`document.querySelector('` + row + `').textContent`); !strings.Contains(got, chain.AgentID()) {
		t.Fatalf("the waiting row does not name the agent's chain: %q", got)
	}
	do("approve with the passkey", chromedp.Click(chromedp.CSS(row+` button[data-approve]`)))
	done := `#agent-approvals-done li[data-approval="` + p.ID + `"]`
	waitFor("the transfer done, its receipt verified in the page", `(document.querySelector('`+done+`') || {dataset: {}}).dataset.verified === "true"`)
	if st := eval(`document.querySelector('` + done + `').dataset.state`); st != approval.StateDone {
		t.Fatalf("the decided row says %q", st)
	}

	var polled approval.View
	if a := ag.post("GET", "/v1/agents/approvals/"+p.ID, nil, &polled); a.status != 200 || polled.State != approval.StateDone {
		t.Fatalf("the agent polls = %d %+v", a.status, polled)
	}
	var res transferReply
	if err := json.Unmarshal(polled.Result, &res); err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, r, res.Receipt)
	if got, _ := balanceOf(r, "gems", bob); got != 300 {
		t.Fatalf("bob holds %d gems, want 300", got)
	}
}
