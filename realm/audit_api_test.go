package realm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// auditPage is GET /v1/audit's answer.
type auditPage struct {
	Events    []audit.Event `json:"events"`
	Next      string        `json:"next"`
	Truncated bool          `json:"truncated"`
}

func getAudit(t *testing.T, r *Realm, query string) auditPage {
	t.Helper()
	var page auditPage
	if code := get(t, r.URL()+"/v1/audit?"+query, &page); code != http.StatusOK {
		t.Fatalf("GET /v1/audit?%s = %d", query, code)
	}
	return page
}

// TestAuditAPIFiltersAndPages runs a realm with two avatars whose
// decisions, of several actions, are in the audit log, and checks each
// filter of GET /v1/audit against the full listing filtered by hand, then
// pages through the log while new decisions are appended.
func TestAuditAPIFiltersAndPages(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	ada := c.register(webauthntest.New(), "ada")
	grace := c.register(webauthntest.New(), "grace")
	adaID, graceID := ada.Avatar["id"].(string), grace.Avatar["id"].(string)
	c.with(ada.Token).must("GET", "/v1/scenes/foundry/access", nil, nil)
	c.with(grace.Token).must("GET", "/v1/scenes/foundry/access", nil, nil)
	// More decisions by both, of several actions, through the realm's log.
	ctx := context.Background()
	actions := []string{"JoinScene", "EnterZone", "CommandActuator", "StepUp", "TransferAsset"}
	for i := range 60 {
		ev := audit.Event{
			Actor: []string{adaID, graceID}[i%2], Action: actions[i%len(actions)],
			Resource: fmt.Sprintf(`Twin::"press-%d"`, i%3), Outcome: audit.Allow, Policies: []string{"test"},
		}
		if i%4 == 0 {
			ev.Outcome, ev.Reasons, ev.Policies = audit.Deny, []string{"not permitted"}, nil
		}
		if err := r.Audit().Commit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var all []audit.Event
	eventually(t, "the view holds every decision", func() bool {
		all = getAudit(t, r, "limit=1000").Events
		return len(all) >= 64 && all[0].Action == actions[59%len(actions)]
	})
	mid := all[len(all)/2].Time

	cases := []struct {
		query string
		want  func(audit.Event) bool
	}{
		{"action=StepUp", func(e audit.Event) bool { return e.Action == "StepUp" }},
		{"action=StepUp&action=TransferAsset", func(e audit.Event) bool { return e.Action == "StepUp" || e.Action == "TransferAsset" }},
		{"action=JoinScene,EnterZone", func(e audit.Event) bool { return e.Action == "JoinScene" || e.Action == "EnterZone" }},
		{"decision=deny", func(e audit.Event) bool { return e.Outcome == audit.Deny }},
		{"decision=allow", func(e audit.Event) bool { return e.Outcome == audit.Allow }},
		{"outcome=deny", func(e audit.Event) bool { return e.Outcome == audit.Deny }},
		{"actor=" + url.QueryEscape(graceID), func(e audit.Event) bool { return e.Actor == graceID }},
		{"resource=" + url.QueryEscape(`Twin::"press-1"`), func(e audit.Event) bool { return e.Resource == `Twin::"press-1"` }},
		{"node=" + r.cfg.Node, func(e audit.Event) bool { return e.Node == r.cfg.Node }},
		{"node=elsewhere", func(audit.Event) bool { return false }},
		{"since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), func(e audit.Event) bool { return !e.Time.Before(mid) }},
		{"until=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), func(e audit.Event) bool { return e.Time.Before(mid) }},
		{"actor=" + url.QueryEscape(adaID) + "&action=CommandActuator,StepUp&decision=allow", func(e audit.Event) bool {
			return e.Actor == adaID && (e.Action == "CommandActuator" || e.Action == "StepUp") && e.Outcome == audit.Allow
		}},
	}
	for _, tc := range cases {
		var want []string
		for _, e := range all {
			if tc.want(e) {
				want = append(want, e.ID)
			}
		}
		var got []string
		for _, e := range getAudit(t, r, tc.query+"&limit=1000").Events {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("GET /v1/audit?%s gave %d events, want %d", tc.query, len(got), len(want))
		}
		if tc.query != "node=elsewhere" && len(want) == 0 {
			t.Errorf("%s: the test's decisions include none that match", tc.query)
		}
	}

	// Page through the log, 7 at a time, and through ada's decisions, 3 at
	// a time, while decisions keep being appended.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ev := audit.Event{Actor: []string{adaID, graceID}[i%2], Action: "EnterZone", Resource: `Zone::"lobby"`, Outcome: audit.Allow}
			if err := r.Audit().Record(ctx, ev); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond) // a busy realm, well under the 1000 a listing holds
		}
	})
	pageAll := func(query string, limit int, snapshot []audit.Event) {
		t.Helper()
		var paged []audit.Event
		next, started := "", false
		for pages := 0; ; pages++ {
			if pages > 200 {
				t.Fatalf("%s: paging does not end", query)
			}
			q := fmt.Sprintf("%s&limit=%d", query, limit)
			if next != "" {
				q += "&before=" + url.QueryEscape(next)
			}
			page := getAudit(t, r, q)
			if len(page.Events) > limit {
				t.Fatalf("%s: a page of %d events, over the limit %d", q, len(page.Events), limit)
			}
			evs := page.Events
			if !started {
				// Paging starts wherever the appends are: skip to the
				// snapshot's newest event.
				i := slices.IndexFunc(evs, func(e audit.Event) bool { return e.ID == snapshot[0].ID })
				if i < 0 {
					evs = nil
				} else {
					evs, started = evs[i:], true
				}
			}
			paged = append(paged, evs...)
			if page.Next == "" {
				break
			}
			next = page.Next
		}
		if len(snapshot) == audit.MaxLimit {
			t.Fatalf("%s: the snapshot fills a whole listing; the test appended too much", query)
		}
		if len(paged) != len(snapshot) {
			t.Fatalf("%s: paging gave %d events, want the %d of the snapshot", query, len(paged), len(snapshot))
		}
		for i := range snapshot {
			if paged[i].ID != snapshot[i].ID {
				t.Fatalf("%s: paged event %d is %s#%d, want %s#%d (no duplicates, none missing)", query, i, paged[i].Node, paged[i].Index, snapshot[i].Node, snapshot[i].Index)
			}
		}
	}
	pageAll("node="+r.cfg.Node, 7, getAudit(t, r, "limit=1000").Events)
	// Only ada's step-ups and transfers: none is appended, yet the pages
	// cross the appends in the stream.
	adas := "actor=" + url.QueryEscape(adaID) + "&action=StepUp,TransferAsset"
	pageAll(adas, 3, getAudit(t, r, adas+"&limit=1000").Events)
	close(stop)
	wg.Wait()
	if grown := getAudit(t, r, "limit=1000").Events; len(grown) <= len(all) {
		t.Fatal("no decision was appended while paging")
	}
}

// TestAuditAPIRefusesBadParameters: every bad parameter is a 400
// problem+json naming it.
func TestAuditAPIRefusesBadParameters(t *testing.T) {
	r := startRealm(t, Config{})
	for _, tc := range []struct{ query, param string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=many", "limit"},
		{"decision=perhaps", "decision"},
		{"outcome=deny&decision=allow", "outcome"},
		{"action=Step%20Up", "action"},
		{"action=StepUp,", "action"},
		{"actor=%01", "actor"},
		{"actor=a&actor=b", "actor"},
		{"resource=", "resource"},
		{"node=a.b", "node"},
		{"since=last%20week", "since"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"since=2026-11-26T05:00:00Z&until=2026-11-26T04:00:00Z", "until"},
		{"before=nope", "before"},
		{"before=0:0", "before"},
		{"verb=deny", "verb"},
	} {
		resp, err := http.Get(r.URL() + "/v1/audit?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var p problem
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" || err != nil ||
			p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, `"`+tc.param+`"`) {
			t.Errorf("GET /v1/audit?%s = %d %s %+v (%v); want a 400 problem naming %q", tc.query, resp.StatusCode, resp.Header.Get("Content-Type"), p, err, tc.param)
		}
	}
}

// TestAuditAPIParametersAreDocumented: the OpenAPI document lists every
// parameter GET /v1/audit accepts, and no other.
func TestAuditAPIParametersAreDocumented(t *testing.T) {
	r := startRealm(t, Config{})
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if code := get(t, r.URL()+"/v1/openapi.json", &doc); code != 200 {
		t.Fatalf("GET /v1/openapi.json = %d", code)
	}
	var documented []string
	for _, p := range doc.Paths["/v1/audit"]["get"].Parameters {
		if p.In == "query" {
			documented = append(documented, p.Name)
		}
	}
	slices.Sort(documented)
	if want := audit.QueryParams(); !slices.Equal(documented, want) {
		t.Fatalf("OpenAPI documents GET /v1/audit's parameters %v, want %v", documented, want)
	}
	if !strings.Contains(string(doc.Paths["/v1/audit"]["get"].Responses["200"]), "AuditPage") {
		t.Fatal("GET /v1/audit's answer is not the AuditPage schema")
	}
}
