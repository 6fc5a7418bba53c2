package realmtest

import (
	"context"
	"net/http"
	"testing"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// AuditPage is GET /v1/audit's answer.
type AuditPage struct {
	Events    []audit.Event `json:"events"`
	Next      string        `json:"next"`
	Truncated bool          `json:"truncated"`
	Scope     string        `json:"scope"`
}

// GetAudit reads a page of node n's audit log with the session token.
func GetAudit(t testing.TB, n Node, token, query string) AuditPage {
	t.Helper()
	var page AuditPage
	if code, p := NewClient(t, n.URL()).With(token).Call("GET", "/v1/audit?"+query, nil, &page); code != http.StatusOK {
		t.Fatalf("GET /v1/audit?%s = %d %+v", query, code, p)
	}
	return page
}

// AuditorToken registers an avatar with only the auditor role and returns
// its session token, for a test that reads every decision. The realm must
// listen on localhost (passkeys are bound to it). Call it after the avatar
// a test wants as the bootstrap administrator has registered: it takes the
// admin role from the first avatar of a realm.
func AuditorToken(t testing.TB, n Node, name string) string {
	t.Helper()
	s := NewClient(t, n.URL()).Register(webauthntest.New(), name)
	if err := Probe(n).Avatars.SetRoles(context.Background(), s.Avatar["id"].(string), []string{"auditor"}); err != nil {
		t.Fatal(err)
	}
	return s.Token
}

// AuditEvents reads the decisions node n recorded for actor and action,
// from its view of the log (GET /v1/audit's source; reading it through
// the API needs an audit role, which is not what most tests are about).
func AuditEvents(t testing.TB, n Node, actor, action string) []audit.Event {
	t.Helper()
	return Probe(n).Audit.Events(audit.Query{Actor: actor, Actions: []string{action}, Limit: audit.MaxLimit})
}
