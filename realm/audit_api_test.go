package realm

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/auditapi"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// Reading the audit log through the API (realmtest).
type auditPage = realmtest.AuditPage

var (
	getAudit     = realmtest.GetAudit
	auditorToken = realmtest.AuditorToken
)

// TestAuditAPIFiltersAndPages runs a realm with two avatars whose
// decisions, of several actions, are in the audit log, and checks each
// filter of GET /v1/audit against the full listing filtered by hand, then
// pages through the log while new decisions are appended.
func TestAuditAPIFiltersAndPages(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	ada := c.Register(webauthntest.New(), "ada")
	grace := c.Register(webauthntest.New(), "grace")
	adaID, graceID := ada.Avatar["id"].(string), grace.Avatar["id"].(string)
	auditor := auditorToken(t, r, "audra")
	c.With(ada.Token).Must("GET", "/v1/scenes/foundry/access", nil, nil)
	c.With(grace.Token).Must("GET", "/v1/scenes/foundry/access", nil, nil)
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
	// Wait for all 60: the newest action alone does not say, since every
	// fifth decision has it and the realm's own events vary in number.
	eventually(t, "the view holds every decision", func() bool {
		all = getAudit(t, r, auditor, "limit=1000").Events
		made := 0
		for _, e := range all {
			if strings.HasPrefix(e.Resource, `Twin::"press-`) && (e.Actor == adaID || e.Actor == graceID) {
				made++
			}
		}
		return made == 60
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
		for _, e := range getAudit(t, r, auditor, tc.query+"&limit=1000").Events {
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
			page := getAudit(t, r, auditor, q)
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
	pageAll("node="+r.cfg.Node, 7, getAudit(t, r, auditor, "limit=1000").Events)
	// Only ada's step-ups and transfers: none is appended, yet the pages
	// cross the appends in the stream.
	adas := "actor=" + url.QueryEscape(adaID) + "&action=StepUp,TransferAsset"
	pageAll(adas, 3, getAudit(t, r, auditor, adas+"&limit=1000").Events)
	close(stop)
	wg.Wait()
	if grown := getAudit(t, r, auditor, "limit=1000").Events; len(grown) <= len(all) {
		t.Fatal("no decision was appended while paging")
	}
}

// TestAuditAPIRefusesBadParameters: every bad parameter is a 400
// problem+json naming it.
func TestAuditAPIRefusesBadParameters(t *testing.T) {
	r := startLocalRealm(t)
	token := newClient(t, r).Register(webauthntest.New(), "ada").Token
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
		req, err := http.NewRequest("GET", r.URL()+"/v1/audit?"+tc.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p edge.Problem
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

// TestAuditAPIIsReadWithASession: the audit log is read with a session.
// An avatar with an audit role (admin, auditor) reads every event; any
// other reads only its own, and asking for another actor's is refused and
// audited. GET /v1/audit/verify stays public and tells no event.
func TestAuditAPIIsReadWithASession(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	ada := c.Register(webauthntest.New(), "ada") // the bootstrap administrator
	grace := c.Register(webauthntest.New(), "grace")
	auditor := auditorToken(t, r, "audra")
	adaID, graceID := ada.Avatar["id"].(string), grace.Avatar["id"].(string)
	if slices.Contains(rolesOf(grace), "admin") || !slices.Contains(rolesOf(ada), "admin") {
		t.Fatalf("roles: ada %v, grace %v; want ada the only administrator", rolesOf(ada), rolesOf(grace))
	}
	c.With(ada.Token).Must("GET", "/v1/scenes/foundry/access", nil, nil)
	c.With(grace.Token).Must("GET", "/v1/scenes/foundry/access", nil, nil)
	if err := r.Audit().Commit(context.Background(), audit.Event{Actor: "gateway-1", Action: "CommandActuator", Resource: `Actuator::"press-1/ram"`, Outcome: audit.Allow}); err != nil {
		t.Fatal(err)
	}
	actors := func(p auditPage) map[string]int {
		m := map[string]int{}
		for _, e := range p.Events {
			m[e.Actor]++
		}
		return m
	}
	eventually(t, "the auditor reads every actor's decisions", func() bool {
		a := actors(getAudit(t, r, auditor, "limit=1000"))
		return a[adaID] > 0 && a[graceID] > 0 && a["gateway-1"] > 0
	})

	// Nobody signed in: 401, with the Bearer challenge.
	resp, err := http.Get(r.URL() + "/v1/audit")
	if err != nil {
		t.Fatal(err)
	}
	var p edge.Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(p.Detail, "sign in") {
		t.Fatalf("anonymous GET /v1/audit = %d %q %+v, want 401 asking to sign in", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), p)
	}

	// The auditor and the administrator read everything, and may filter by
	// any actor.
	for who, token := range map[string]string{"auditor": auditor, "admin": ada.Token} {
		page := getAudit(t, r, token, "limit=1000")
		if a := actors(page); page.Scope != "all" || a[adaID] == 0 || a[graceID] == 0 || a["gateway-1"] == 0 {
			t.Errorf("%s reads scope %q with actors %v, want every actor's decisions", who, page.Scope, a)
		}
		if a := actors(getAudit(t, r, token, "limit=1000&actor="+url.QueryEscape(graceID))); len(a) != 1 || a[graceID] == 0 {
			t.Errorf("%s filtering by grace reads actors %v", who, a)
		}
	}

	// A visitor reads its own decisions only, with or without the filter.
	for _, q := range []string{"limit=1000", "limit=1000&actor=" + url.QueryEscape(graceID), "limit=1000&decision=allow"} {
		page := getAudit(t, r, grace.Token, q)
		if a := actors(page); page.Scope != "own" || len(a) != 1 || a[graceID] == 0 {
			t.Errorf("grace's GET /v1/audit?%s reads scope %q with actors %v, want only her own", q, page.Scope, a)
		}
	}
	// Asking for someone else's is refused with the reason, and the refusal
	// is on record.
	for _, other := range []string{adaID, "gateway-1"} {
		code, p := c.With(grace.Token).Call("GET", "/v1/audit?actor="+url.QueryEscape(other), nil, nil)
		if code != http.StatusForbidden || !strings.Contains(p.Detail, "only its own") || !strings.Contains(p.Detail, "auditor") {
			t.Errorf("grace reading %s's decisions = %d %+v, want 403 naming the audit roles", other, code, p)
		}
	}
	eventually(t, "the refusals are audited", func() bool {
		n := 0
		for _, e := range getAudit(t, r, auditor, "limit=1000&action=ReadAudit&decision=deny").Events {
			if e.Actor == graceID && (e.Resource == `AuditLog::"`+adaID+`"` || e.Resource == `AuditLog::"gateway-1"`) {
				n++
			}
		}
		return n == 2
	})

	// Granting the auditor role widens grace's view on her next request.
	if err := r.avatars.SetRoles(context.Background(), graceID, []string{"visitor", "auditor"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "grace as an auditor reads ada's decisions", func() bool {
		page := getAudit(t, r, grace.Token, "limit=1000&actor="+url.QueryEscape(adaID))
		return page.Scope == "all" && len(page.Events) > 0
	})

	// The chain check is public and tells counts, chain heads, tree roots
	// and signed checkpoints only.
	resp, err = http.Get(r.URL() + "/v1/audit/verify")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("anonymous GET /v1/audit/verify = %d (%v)", resp.StatusCode, err)
	}
	var verify struct {
		OK     bool             `json:"ok"`
		Chains []map[string]any `json:"chains"`
	}
	if err := json.Unmarshal(raw, &verify); err != nil || !verify.OK || len(verify.Chains) != 1 {
		t.Fatalf("GET /v1/audit/verify = %s (%v), want one intact chain", raw, err)
	}
	for field := range verify.Chains[0] {
		if !slices.Contains([]string{"node", "events", "blocks", "head", "break", "size", "root", "checkpoint"}, field) {
			t.Errorf("GET /v1/audit/verify tells %q of a chain; only counts, heads and roots are public", field)
		}
	}
	for _, secret := range []string{adaID, graceID, "gateway-1", "press-1"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("GET /v1/audit/verify tells %q: %s", secret, raw)
		}
	}

	// Audit roles are checked like every role.
	if _, err := New(Config{DataDir: t.TempDir(), AuditRoles: []string{"Not A Role"}}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "audit roles") {
		t.Fatalf("New with a bad audit role = %v, want ErrConfig naming the audit roles", err)
	}
}

// TestAuditRolesAreConfigurable: with Config.AuditRoles naming another
// role, an administrator without it reads only its own decisions.
func TestAuditRolesAreConfigurable(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", AuditRoles: []string{"compliance"}})
	c := newClient(t, r)
	ada := c.Register(webauthntest.New(), "ada")
	if !slices.Contains(rolesOf(ada), "admin") {
		t.Fatalf("ada's roles %v, want the bootstrap administrator", rolesOf(ada))
	}
	if page := getAudit(t, r, ada.Token, "limit=1000"); page.Scope != "own" {
		t.Fatalf("an administrator without the compliance role reads scope %q, want own", page.Scope)
	}
	code, p := c.With(ada.Token).Call("GET", "/v1/audit?actor=gateway-1", nil, nil)
	if code != http.StatusForbidden || !strings.Contains(p.Detail, "compliance") {
		t.Fatalf("reading another actor's decisions = %d %+v, want 403 naming the compliance role", code, p)
	}
	if err := r.avatars.SetRoles(context.Background(), ada.Avatar["id"].(string), []string{"admin", "compliance"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ada with the compliance role reads everything", func() bool {
		return getAudit(t, r, ada.Token, "limit=1000").Scope == "all"
	})
}

// TestAuditVerifyIsRateLimited: GET /v1/audit/verify is public and walks
// every chain, so a client address that keeps calling it is answered 429
// rate-limited with Retry-After once its burst is spent.
func TestAuditVerifyIsRateLimited(t *testing.T) {
	r := startRealm(t, Config{})
	// The bucket refills meanwhile, so a slow machine may need a few
	// calls beyond the burst; three bursts' worth is far beyond that.
	for i := range 3 * auditapi.VerifyBurst {
		resp, err := http.Get(r.URL() + "/v1/audit/verify")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			continue
		}
		var p struct {
			Type string `json:"type"`
		}
		if resp.StatusCode != http.StatusTooManyRequests || json.Unmarshal(raw, &p) != nil || p.Type != edge.ProblemBase+edge.TypeRateLimited ||
			resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("call %d: %d %s (Retry-After %q), want 429 rate-limited with Retry-After", i+1, resp.StatusCode, raw, resp.Header.Get("Retry-After"))
		}
		if i < auditapi.VerifyBurst {
			t.Fatalf("call %d refused, within the burst of %d", i+1, auditapi.VerifyBurst)
		}
		return
	}
	t.Fatalf("%d calls in a row were all answered; want 429 once the burst of %d is spent", 3*auditapi.VerifyBurst, auditapi.VerifyBurst)
}

// TestAuditOwnerReadsItsAgents: an avatar without an audit role reads the
// decisions of an agent it delegated to (scope "agent"), each with the
// agent's trust; another avatar asking for them is refused with 403, and
// an unknown agent is anyone else's.
func TestAuditOwnerReadsItsAgents(t *testing.T) {
	r := startLocalRealm(t)
	newClient(t, r).Register(webauthntest.New(), "ada") // the bootstrap administrator
	otto := realmtest.NewOperator(t, r, "otto")
	una := realmtest.NewOperator(t, r, "una")
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := otto.IssueDelegation(pub, []string{"JoinScene"}, []map[string]string{{"type": "Scene", "id": "foundry"}})
	ag := &realmtest.Agent{T: t, Base: r.URL(), Key: key, Token: token, HTTP: &http.Client{Timeout: 20 * time.Second}}
	if a := ag.Do("GET", "/v1/scenes/foundry/access", nil); a.Status != http.StatusOK {
		t.Fatalf("the agent's scene access = %d %+v", a.Status, a.Problem)
	}
	agentID := agents.AgentID(pub)
	query := "limit=100&actor=" + url.QueryEscape(agentID)
	var page auditPage
	eventually(t, "the owner reads its agent's decisions", func() bool {
		page = getAudit(t, r, otto.Sess.Token, query)
		return page.Scope == "agent" && len(page.Events) > 0
	})
	for _, e := range page.Events {
		if e.Actor != agentID {
			t.Fatalf("the owner's page of its agent holds %s's event", e.Actor)
		}
	}
	if agent, _ := page.Events[0].Signals["agent"].(map[string]any); agent == nil || agent["trust"] == nil {
		t.Errorf("the agent's decision carries no trust: %+v", page.Events[0].Signals)
	}
	for _, actor := range []string{agentID, "ag_00000000000000000000000000000000"} {
		code, p := una.Call("GET", "/v1/audit?actor="+url.QueryEscape(actor), nil, nil)
		if code != http.StatusForbidden || !strings.Contains(p.Detail, "only its own") {
			t.Errorf("una reading agent %s's decisions = %d %+v, want 403", actor, code, p)
		}
	}
}
