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
)

// TestAuditViewerPagesThroughTheRealm opens the console's audit viewer on a
// realm with more decisions than a page holds: the viewer shows a page,
// loads older ones with "Load older" until the realm has no more, and asks
// the realm to filter by decision and actor.
func TestAuditViewerPagesThroughTheRealm(t *testing.T) {
	r := startRealm(t, realm.Config{Listen: "localhost:0"})
	b := browsertest.Start(t, browsertest.Options{})
	ctx, cancel := b.WithTimeout(90 * time.Second)
	defer cancel()
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitFor := func(what string, js string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js)); err != nil {
			summary, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("audit-summary") || {}).textContent || document.body.dataset.last || ""`))
			t.Fatalf("%s: %v (page: %s)", what, err, summary)
		}
	}
	eval := func(js string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	do("register", chromedp.Navigate(r.URL()))
	waitFor("console ready", `document.body.dataset.ready === "1" && document.body.dataset.state === "signed-out"`)
	do("register", chromedp.SendKeys(chromedp.CSS("#name"), "ada"), chromedp.SendKeys(chromedp.CSS("#display"), "Ada"), chromedp.Click(chromedp.CSS("#register")))
	waitFor("signed in", `document.body.dataset.shown === "account"`)
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
	eventually(t, "the view holds the decisions", func() bool { return total("action=CommandActuator") == 450 })
	all, denies, myDenies := total(""), total("decision=deny"), total("decision=deny&actor="+av.ID)

	do("open the audit viewer", chromedp.Click(chromedp.CSS(`nav a[href="#/audit"]`)))
	waitFor("the newest page", `document.querySelectorAll("#audit-rows tr").length === 200 && !document.getElementById("audit-more").hidden`)
	for shown := 200; shown < all; shown += 200 {
		do("load older", chromedp.Click(chromedp.CSS("#audit-more")))
		want := min(shown+200, all)
		waitFor("the next older page", `document.querySelectorAll("#audit-rows tr").length === `+strconv.Itoa(want))
	}
	waitFor("no older page", `document.getElementById("audit-more").hidden`)
	if n := eval(`new Set([...document.querySelectorAll("#audit-rows tr")].map((r) => r.dataset.node + "#" + r.dataset.index)).size`); n != all {
		t.Fatalf("the viewer shows %d distinct events, want the realm's %d", n, all)
	}

	do("only denies", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById("audit-outcome"); s.value = "deny"; s.dispatchEvent(new Event("change")); })()`))
	waitFor("the newest denies", `document.querySelectorAll('#audit-rows tr').length === `+strconv.Itoa(min(denies, 200))+` && document.querySelectorAll('#audit-rows tr:not([data-outcome="deny"])').length === 0`)
	do("only mine", chromedp.Click(chromedp.CSS("#audit-mine")))
	waitFor("my denies", `document.querySelectorAll('#audit-rows tr').length === `+strconv.Itoa(myDenies)+
		` && document.querySelectorAll('#audit-rows tr:not([data-actor=`+strconv.Quote(av.ID)+`])').length === 0 && document.getElementById("audit-more").hidden`)
	if eval(`document.getElementById("audit-mine").disabled || !document.getElementById("audit-scope").hidden ? 1 : 0`) != 0 {
		t.Fatal("the administrator's viewer forces only my decisions")
	}

	// A visitor, neither admin nor auditor, sees only its own decisions:
	// the realm answers so, and the viewer says why and keeps the box on.
	do("sign out", chromedp.Click(chromedp.CSS(`nav a[href="#/account"]`)))
	waitFor("the account view", `document.body.dataset.shown === "account" && !!document.getElementById("signout")`)
	do("sign out", chromedp.Click(chromedp.CSS("#signout")))
	waitFor("signed out", `document.body.dataset.state === "signed-out"`)
	do("register grace", chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = ""; document.getElementById("display").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#name"), "grace"), chromedp.SendKeys(chromedp.CSS("#display"), "Grace"), chromedp.Click(chromedp.CSS("#register")))
	waitFor("grace signed in", `document.body.dataset.state === "signed-in" && document.body.dataset.shown === "account"`)
	grace, err := realmtest.Probe(r).Avatars.ByName(context.Background(), "grace")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "grace's registration is in the view", func() bool { return total("actor="+grace.ID) > 0 })
	graces := total("actor=" + grace.ID)
	do("open the audit viewer", chromedp.Click(chromedp.CSS(`nav a[href="#/audit"]`)))
	waitFor("only grace's decisions, with the note", `(() => {
		const rows = [...document.querySelectorAll("#audit-rows tr")];
		const mine = document.getElementById("audit-mine");
		return rows.length === `+strconv.Itoa(graces)+` && rows.every((r) => r.dataset.actor === `+strconv.Quote(grace.ID)+`) &&
			mine.checked && mine.disabled && !document.getElementById("audit-scope").hidden;
	})()`)
}
