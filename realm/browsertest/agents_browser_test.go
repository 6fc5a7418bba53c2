package browsertest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestAgentApprovalInConsole: an agent's transfer over its auto-approval
// value waits; its owner sees it arrive live in the console's Agents view,
// approves it with the passkey of headless Chromium's virtual
// authenticator (a step-up bound to that action), and the transfer
// completes with a receipt that verifies, in the page and here.
func TestAgentApprovalInConsole(t *testing.T) {
	r := nodes.Start(t, realm.Config{Listen: "localhost:0", ScenesDir: marketScenes})
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(120 * time.Second)
	defer cancel()
	page := b.Page(ctx, t, `JSON.stringify(document.body.dataset) + " " + `+pageResults)
	custodial := registerWithWallet(page, r, "olga", "Olga")
	realmtest.Mint(t, r, "gems", "", custodial, 1000)
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
	var res realmtest.TransferReply
	if err := json.Unmarshal(polled.Result, &res); err != nil {
		t.Fatal(err)
	}
	realmtest.VerifyReceipt(t, r, res.Receipt)
	if got, _ := realmtest.BalanceOf(r, "gems", bob); got != 300 {
		t.Fatalf("bob holds %d gems, want 300", got)
	}
}

// TestAgentsViewDelegates: a person delegates to an agent from the
// console's Agents view. A key that is not an agent's is refused under
// the form in words and nothing is issued; then the agent's real key, an
// action, a scene and limits, confirmed with the passkey of headless
// Chromium's virtual authenticator (a user-verified step-up bound to the
// grant's digest): the token is shown once and the delegation is listed,
// active, under the agent's name. The agent then uses it, and its
// activity (its audited decisions, which its owner may read) is listed
// with its trust drawn over time.
func TestAgentsViewDelegates(t *testing.T) {
	r := nodes.Start(t, realm.Config{Listen: "localhost:0"})
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(120 * time.Second)
	defer cancel()
	page := b.Page(ctx, t, `JSON.stringify(document.body.dataset) + " " + `+pageResults)

	page.Do("open the console", chromedp.Navigate(r.URL()))
	page.WaitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-out"`)
	page.Do("register", chromedp.SendKeys(chromedp.CSS("#name"), "nia"), chromedp.SendKeys(chromedp.CSS("#display"), "Nia"), chromedp.Click(chromedp.CSS("#register")))
	page.WaitFor("signed in", `document.body.dataset.state === "signed-in"`)
	page.Do("open the Agents view", chromedp.Click(chromedp.CSS(`nav a[href="#/agents"]`)))
	page.WaitFor("the Agents view with the realm's scenes to pick", `document.body.dataset.shown === "agents" && document.getElementById("view-agents").dataset.loaded === "1" && document.querySelector('#delegation-resources input[data-resource="Scene:foundry"]') !== null`)

	// A key cut short: the reason in words under the form, nothing issued.
	page.Do("a key cut short", chromedp.SendKeys(chromedp.CSS("#delegation-name"), "scout"), chromedp.SendKeys(chromedp.CSS("#delegation-key"), "not-a-key"),
		chromedp.Click(chromedp.CSS(`#delegation-actions input[data-action="JoinScene"]`)),
		chromedp.Click(chromedp.CSS(`#delegation-resources input[data-resource="Scene:foundry"]`)),
		chromedp.Click(chromedp.CSS("#delegation-issue")))
	page.WaitFor("the refusal under the form", `document.body.dataset.last === "delegate:error"`)
	if got := page.Eval(`document.getElementById("delegation-form").parentElement.textContent`); !strings.Contains(got, "43 characters") {
		t.Fatalf("the form's card does not say what is wrong with the key: %q", got)
	}
	if n := page.Eval(`String(document.querySelectorAll("#agent-delegations li").length)`); n != "0" {
		t.Fatalf("%s delegations listed after a refused one", n)
	}

	key := realmtest.NewAgentKey(t)
	pub := key.Public().(ed25519.PublicKey)
	page.Do("the agent's key", chromedp.Evaluate[chromedp.Void](`document.getElementById("delegation-key").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#delegation-key"), agents.EncodeAgentKey(pub)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("delegation-hours").value = "2"`),
		chromedp.Click(chromedp.CSS("#delegation-issue")))
	page.WaitFor("the token, shown once", `!document.getElementById("delegation-token").hidden && document.getElementById("delegation-token-value").value.startsWith("zrd1~")`)
	id := page.Eval(`document.getElementById("delegation-token").dataset.delegation`)
	row := `#agent-delegations li[data-delegation="` + id + `"]`
	page.WaitFor("the new delegation listed, active", `(document.querySelector('`+row+`') || {dataset: {}}).dataset.state === "active"`)
	if v := page.Eval(`document.getElementById("delegation-key").value + "|" + document.getElementById("delegation-hours").value`); v != "|2" {
		t.Errorf("after issuing, the key and hours read %q; want the key cleared and the limits kept", v)
	}
	got := page.Eval(`document.querySelector('` + row + `').textContent`)
	for _, want := range []string{"scout", agents.AgentID(pub), "JoinScene", "Scene foundry"} {
		if !strings.Contains(got, want) {
			t.Errorf("the listed delegation does not say %q: %q", want, got)
		}
	}

	// The agent asks what it may do in the scene, with the token the
	// page showed and a proof by its own key: a decision audited with
	// the agent as its actor and its trust.
	ag := &realmtest.Agent{T: t, Base: r.URL(), Key: key, Token: page.Eval(`document.getElementById("delegation-token-value").value`), HTTP: &http.Client{Timeout: 20 * time.Second}}
	if a := ag.Do("GET", "/v1/scenes/foundry/access", nil); a.Status != http.StatusOK {
		t.Fatalf("the agent's scene access = %d %+v", a.Status, a.Problem)
	}
	activity := `#agent-delegations details[data-agent-activity="` + agents.AgentID(pub) + `"]`
	page.Do("open the agent's activity", chromedp.Click(chromedp.CSS(activity+" summary")))
	page.WaitFor("the agent's JoinScene decision listed and its trust drawn", `(() => {
		const box = document.querySelector('`+activity+`');
		if (box.dataset.loaded === "1" && !box.querySelector('li[data-action="JoinScene"]')) box.querySelector("button").click();
		return box.querySelector('li[data-action="JoinScene"]') !== null && Number(box.querySelector("canvas").dataset.points) >= 1;
	})()`)
	if label := page.Eval(`document.querySelector('` + activity + ` canvas').getAttribute("aria-label")`); !strings.Contains(label, "Trust of scout") || !strings.Contains(label, "trusted from 0.6") {
		t.Errorf("the trust chart's accessible label: %q", label)
	}
}
