package browsertest

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestAuditViewerPagesThroughTheRealm opens the console's audit viewer on a
// realm with more decisions than a page holds: the viewer shows a page,
// loads older ones with "Load older" until the realm has no more, and asks
// the realm to filter by decision and actor.
func TestAuditViewerPagesThroughTheRealm(t *testing.T) {
	r := nodes.Start(t, realm.Config{Listen: "localhost:0"})
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(90 * time.Second)
	defer cancel()
	page := b.Page(ctx, t, `(document.getElementById("audit-summary") || {}).textContent || document.body.dataset.last || ""`)
	page.Wait = 20 * time.Second

	page.Do("register", chromedp.Navigate(r.URL()))
	page.WaitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-out"`)
	page.Do("register", chromedp.SendKeys(chromedp.CSS("#name"), "ada"), chromedp.SendKeys(chromedp.CSS("#display"), "Ada"), chromedp.Click(chromedp.CSS("#register")))
	page.WaitFor("signed in", `document.body.dataset.shown === "account"`)
	av, err := realmtest.Probe(r).Avatars.ByName(context.Background(), "ada")
	if err != nil {
		t.Fatal(err)
	}
	// 450 more decisions, a third of them ada's, every fourth a deny.
	for i := range 450 {
		ev := audit.Event{Actor: "gateway-1", Action: "CommandActuator", Resource: `Actuator::"press-1/ram"`, Outcome: audit.Allow}
		if i%3 == 0 {
			ev.Actor = av.ID
		}
		if i%4 == 0 {
			ev.Outcome, ev.Reasons = audit.Deny, []string{"not permitted"}
		}
		if err := r.Audit().Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// What GET /v1/audit answers an auditor, from the realm's view.
	total := func(query string) int {
		values, err := url.ParseQuery("limit=1000&" + query)
		if err != nil {
			t.Fatal(err)
		}
		q, err := audit.ParseQuery(values)
		if err != nil {
			t.Fatal(err)
		}
		return len(realmtest.Probe(r).Audit.Page(q).Events)
	}
	realmtest.Eventually(t, "the view holds the decisions", func() bool { return total("action=CommandActuator") == 450 })
	all, denies, myDenies := total(""), total("decision=deny"), total("decision=deny&actor="+av.ID)

	page.Do("open the audit viewer", chromedp.Click(chromedp.CSS(`nav a[href="#/audit"]`)))
	page.WaitFor("the newest page", `document.querySelectorAll("#audit-rows tr").length === 200 && !document.getElementById("audit-more").hidden`)
	for shown := 200; shown < all; shown += 200 {
		page.Do("load older", chromedp.Click(chromedp.CSS("#audit-more")))
		want := min(shown+200, all)
		page.WaitFor("the next older page", `document.querySelectorAll("#audit-rows tr").length === `+strconv.Itoa(want))
	}
	page.WaitFor("no older page", `document.getElementById("audit-more").hidden`)
	if n := browsertest.Eval[int](page, `new Set([...document.querySelectorAll("#audit-rows tr")].map((r) => r.dataset.node + "#" + r.dataset.index)).size`); n != all {
		t.Fatalf("the viewer shows %d distinct events, want the realm's %d", n, all)
	}

	page.Do("only denies", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById("audit-outcome"); s.value = "deny"; s.dispatchEvent(new Event("change")); })()`))
	page.WaitFor("the newest denies", `document.querySelectorAll('#audit-rows tr').length === `+strconv.Itoa(min(denies, 200))+` && document.querySelectorAll('#audit-rows tr:not([data-outcome="deny"])').length === 0`)
	page.Do("only mine", chromedp.Click(chromedp.CSS("#audit-mine")))
	page.WaitFor("my denies", `document.querySelectorAll('#audit-rows tr').length === `+strconv.Itoa(myDenies)+
		` && document.querySelectorAll('#audit-rows tr:not([data-actor=`+strconv.Quote(av.ID)+`])').length === 0 && document.getElementById("audit-more").hidden`)
	if browsertest.Eval[int](page, `document.getElementById("audit-mine").disabled || !document.getElementById("audit-scope").hidden ? 1 : 0`) != 0 {
		t.Fatal("the administrator's viewer forces only my decisions")
	}

	// A visitor, neither admin nor auditor, sees only its own decisions:
	// the realm answers so, and the viewer says why and keeps the box on.
	page.Do("sign out", chromedp.Click(chromedp.CSS(`nav a[href="#/account"]`)))
	page.WaitFor("the account view", `document.body.dataset.shown === "account" && !!document.getElementById("signout")`)
	page.Do("sign out", chromedp.Click(chromedp.CSS("#signout")))
	page.WaitFor("signed out", `document.body.dataset.state === "signed-out"`)
	page.Do("register grace", chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = ""; document.getElementById("display").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#name"), "grace"), chromedp.SendKeys(chromedp.CSS("#display"), "Grace"), chromedp.Click(chromedp.CSS("#register")))
	page.WaitFor("grace signed in", `document.body.dataset.state === "signed-in" && document.body.dataset.shown === "account"`)
	grace, err := realmtest.Probe(r).Avatars.ByName(context.Background(), "grace")
	if err != nil {
		t.Fatal(err)
	}
	realmtest.Eventually(t, "grace's registration is in the view", func() bool { return total("actor="+grace.ID) > 0 })
	graces := total("actor=" + grace.ID)
	page.Do("open the audit viewer", chromedp.Click(chromedp.CSS(`nav a[href="#/audit"]`)))
	page.WaitFor("only grace's decisions, with the note", `(() => {
		const rows = [...document.querySelectorAll("#audit-rows tr")];
		const mine = document.getElementById("audit-mine");
		return rows.length === `+strconv.Itoa(graces)+` && rows.every((r) => r.dataset.actor === `+strconv.Quote(grace.ID)+`) &&
			mine.checked && mine.disabled && !document.getElementById("audit-scope").hidden;
	})()`)
}
