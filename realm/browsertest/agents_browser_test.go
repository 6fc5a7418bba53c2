package browsertest

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
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestAgentApprovalInConsole: an agent's transfer over its auto-approval
// value waits; its owner sees it arrive live in the console's Agents view,
// approves it with the passkey of headless Chromium's virtual
// authenticator (a step-up bound to that action), and the transfer
// completes with a receipt that verifies, in the page and here.
func TestAgentApprovalInConsole(t *testing.T) {
	r := startRealm(t, realm.Config{Listen: "localhost:0", ScenesDir: marketScenes})
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(120 * time.Second)
	defer cancel()
	page := b.Page(ctx, t, `JSON.stringify(document.body.dataset) + " " + `+pageResults)
	custodial := registerWithWallet(page, r, "olga", "Olga")
	mint(t, r, "gems", "", custodial, 1000)
	olga, err := realmtest.Probe(r).Avatars.ByName(context.Background(), "olga")
	if err != nil {
		t.Fatal(err)
	}
	ag, chain := realmtest.NewTrader(t, r, olga.ID)

	page.Do("open the Agents view", chromedp.Click(chromedp.CSS(`nav a[href="#/agents"]`)))
	page.WaitFor("the Agents view", `document.body.dataset.shown === "agents" && document.getElementById("view-agents").dataset.loaded === "1"`)

	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	var p approval.View
	if a := ag.Post("POST", "/v1/assets/transfers", realmtest.AgentTransfer("gems", 300, custodial, bob, 1), &p); a.Status != http.StatusAccepted {
		t.Fatalf("the agent's transfer of 300 = %d %+v", a.Status, a.Problem)
	}
	row := `#agent-approvals li[data-approval="` + p.ID + `"]`
	page.WaitFor("the waiting transfer, pushed live", `document.querySelector('`+row+` button[data-approve]') !== null`)
	if got := page.Eval(`document.querySelector('` + row + `').textContent`); !strings.Contains(got, chain.AgentID()) {
		t.Fatalf("the waiting row does not name the agent's chain: %q", got)
	}
	page.Do("approve with the passkey", chromedp.Click(chromedp.CSS(row+` button[data-approve]`)))
	done := `#agent-approvals-done li[data-approval="` + p.ID + `"]`
	page.WaitFor("the transfer done, its receipt verified in the page", `(document.querySelector('`+done+`') || {dataset: {}}).dataset.verified === "true"`)
	if st := page.Eval(`document.querySelector('` + done + `').dataset.state`); st != approval.StateDone {
		t.Fatalf("the decided row says %q", st)
	}

	var polled approval.View
	if a := ag.Post("GET", "/v1/agents/approvals/"+p.ID, nil, &polled); a.Status != 200 || polled.State != approval.StateDone {
		t.Fatalf("the agent polls = %d %+v", a.Status, polled)
	}
	var res transferReply
	if err := json.Unmarshal(polled.Result, &res); err != nil {
		t.Fatal(err)
	}
	realmtest.VerifyReceipt(t, r, res.Receipt)
	if got, _ := realmtest.BalanceOf(r, "gems", bob); got != 300 {
		t.Fatalf("bob holds %d gems, want 300", got)
	}
}
