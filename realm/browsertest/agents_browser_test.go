package browsertest

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
)

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
	r := startRealm(t, realm.Config{Listen: "localhost:0"})
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(120 * time.Second)
	defer cancel()
	pg := page{t: t, ctx: ctx}
	do, eval, waitFor := pg.do, pg.eval, pg.waitFor

	do("open the console", chromedp.Navigate(r.URL()))
	waitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-out"`)
	do("register", chromedp.SendKeys(chromedp.CSS("#name"), "nia"), chromedp.SendKeys(chromedp.CSS("#display"), "Nia"), chromedp.Click(chromedp.CSS("#register")))
	waitFor("signed in", `document.body.dataset.state === "signed-in"`)
	do("open the Agents view", chromedp.Click(chromedp.CSS(`nav a[href="#/agents"]`)))
	waitFor("the Agents view with the realm's scenes to pick", `document.body.dataset.shown === "agents" && document.getElementById("view-agents").dataset.loaded === "1" && document.querySelector('#delegation-resources input[data-resource="Scene:foundry"]') !== null`)

	// A key cut short: the reason in words under the form, nothing issued.
	do("a key cut short", chromedp.SendKeys(chromedp.CSS("#delegation-name"), "scout"), chromedp.SendKeys(chromedp.CSS("#delegation-key"), "not-a-key"),
		chromedp.Click(chromedp.CSS(`#delegation-actions input[data-action="JoinScene"]`)),
		chromedp.Click(chromedp.CSS(`#delegation-resources input[data-resource="Scene:foundry"]`)),
		chromedp.Click(chromedp.CSS("#delegation-issue")))
	waitFor("the refusal under the form", `document.body.dataset.last === "delegate:error"`)
	if got := eval(`document.getElementById("delegation-form").parentElement.textContent`); !strings.Contains(got, "43 characters") {
		t.Fatalf("the form's card does not say what is wrong with the key: %q", got)
	}
	if n := eval(`String(document.querySelectorAll("#agent-delegations li").length)`); n != "0" {
		t.Fatalf("%s delegations listed after a refused one", n)
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	do("the agent's key", chromedp.Evaluate[chromedp.Void](`document.getElementById("delegation-key").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#delegation-key"), agents.EncodeAgentKey(pub)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("delegation-hours").value = "2"`),
		chromedp.Click(chromedp.CSS("#delegation-issue")))
	waitFor("the token, shown once", `!document.getElementById("delegation-token").hidden && document.getElementById("delegation-token-value").value.startsWith("zrd1~")`)
	id := eval(`document.getElementById("delegation-token").dataset.delegation`)
	row := `#agent-delegations li[data-delegation="` + id + `"]`
	waitFor("the new delegation listed, active", `(document.querySelector('`+row+`') || {dataset: {}}).dataset.state === "active"`)
	got := eval(`document.querySelector('` + row + `').textContent`)
	for _, want := range []string{"scout", agents.AgentID(pub), "JoinScene", "Scene foundry"} {
		if !strings.Contains(got, want) {
			t.Errorf("the listed delegation does not say %q: %q", want, got)
		}
	}

	// The agent asks what it may do in the scene, with the token the
	// page showed and a proof by its own key: a decision audited with
	// the agent as its actor and its trust.
	token := eval(`document.getElementById("delegation-token-value").value`)
	if code := agentGet(t, r.URL(), "/v1/scenes/foundry/access", token, priv); code != http.StatusOK {
		t.Fatalf("the agent's scene access = %d", code)
	}
	activity := `#agent-delegations details[data-agent-activity="` + agents.AgentID(pub) + `"]`
	do("open the agent's activity", chromedp.Click(chromedp.CSS(activity+" summary")))
	waitFor("the agent's JoinScene decision listed and its trust drawn", `(() => {
		const box = document.querySelector('`+activity+`');
		if (box.dataset.loaded === "1" && !box.querySelector('li[data-action="JoinScene"]')) box.querySelector("button").click();
		return box.querySelector('li[data-action="JoinScene"]') !== null && Number(box.querySelector("canvas").dataset.points) >= 1;
	})()`)
	if label := eval(`document.querySelector('` + activity + ` canvas').getAttribute("aria-label")`); !strings.Contains(label, "Trust of scout") || !strings.Contains(label, "trusted from 0.6") {
		t.Errorf("the trust chart's accessible label: %q", label)
	}
}

// agentGet is an agent's GET: its token as Authorization: DPoP and a
// proof signed with its key (again with the node's nonce when asked).
func agentGet(t *testing.T, base, path, token string, key ed25519.PrivateKey) int {
	t.Helper()
	nonce := ""
	for range 2 {
		proof, err := agents.NewProof(key, http.MethodGet, base+path, token, nonce, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && nonce == "" && resp.Header.Get("DPoP-Nonce") != "" {
			nonce = resp.Header.Get("DPoP-Nonce")
			continue
		}
		return resp.StatusCode
	}
	return http.StatusUnauthorized
}
