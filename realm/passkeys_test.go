package realm

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// apiClient speaks the realm's JSON API the way a third-party client would.
type (
	apiClient     = realmtest.Client
	beginAnswer   = realmtest.Begin
	sessionAnswer = realmtest.Session
)

func newClient(t testing.TB, r *Realm) *apiClient { return realmtest.NewClient(t, r.URL()) }

func startLocalRealm(t *testing.T) *Realm {
	// localhost, not 127.0.0.1: the relying party id is "localhost" and
	// WebAuthn binds passkeys to it.
	return startRealm(t, Config{Listen: "localhost:0"})
}

const (
	digestA = realmtest.DigestA
	digestB = realmtest.DigestB
)

func TestPasskeyJourney(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()

	reg := c.Register(auth, "ada")
	if reg.Token == "" || !strings.HasPrefix(reg.Token, "zrs_") || reg.Session.ID == "" {
		t.Fatalf("register answer = %+v, want a zrs_ token and a session", reg)
	}
	me := c.With(reg.Token)
	var mine struct {
		Avatar struct {
			Name     string           `json:"name"`
			Roles    []string         `json:"roles"`
			Passkeys []map[string]any `json:"passkeys"`
		} `json:"avatar"`
		Trust map[string]any `json:"trust"`
		CSRF  string         `json:"csrf"`
	}
	me.Must("GET", "/v1/avatars/me", nil, &mine)
	if mine.Avatar.Name != "ada" || len(mine.Avatar.Passkeys) != 1 || mine.CSRF != "" {
		t.Fatalf("GET /v1/avatars/me = %+v, want ada with one passkey and no CSRF token for a bearer session", mine)
	}
	if ctxRec, _ := mine.Trust["context"].(map[string]any); ctxRec["state"] == nil || ctxRec["passkey_age_s"] == nil {
		t.Fatalf("trust context = %v, want the Cedar trust record", mine.Trust["context"])
	}

	// Sign out: the token stops working.
	me.Must("POST", "/v1/sessions/logout", nil, nil)
	if code, p := me.Call("GET", "/v1/avatars/me", nil, nil); code != 401 || !strings.Contains(p.Detail, "revoked") {
		t.Fatalf("GET /v1/avatars/me after logout = %d %+v, want 401 revoked", code, p)
	}

	// Sign in without a name (discoverable) and by name.
	in := c.Login(auth, "")
	if in.Avatar["name"] != "ada" {
		t.Fatalf("discoverable sign-in signed in %v, want ada", in.Avatar["name"])
	}
	in2 := c.Login(auth, "ada")
	me = c.With(in2.Token)

	// Step up bound to digest A; then a step-up ceremony begun for A
	// finished claiming B is refused.
	if code, p := me.StepUp(auth, digestA); code != 200 {
		t.Fatalf("step-up for A = %d %+v", code, p)
	}
	var begin beginAnswer
	me.Must("POST", "/v1/webauthn/stepup/begin", map[string]string{"action_digest": digestA}, &begin)
	opts, _ := json.Marshal(begin)
	cred, _ := auth.Assert(opts, c.Origin)
	if code, p := me.Call("POST", "/v1/webauthn/stepup/finish", map[string]any{"ceremony_id": begin.Ceremony(), "action_digest": digestB, "credential": json.RawMessage(cred)}, nil); code != 400 || !strings.Contains(p.Detail, "something else") {
		t.Fatalf("step-up for A presented for B = %d %+v, want 400 mismatch", code, p)
	}
	// Another avatar cannot finish ada's step-up ceremony.
	bob := c.With(c.Register(webauthntest.New(), "bob").Token)
	if code, _ := bob.Call("POST", "/v1/webauthn/stepup/finish", map[string]any{"ceremony_id": begin.Ceremony(), "action_digest": digestA, "credential": json.RawMessage(cred)}, nil); code < 400 {
		t.Fatalf("bob finishing ada's step-up = %d, want refused", code)
	}

	// Deleting the only passkey is refused; with a second passkey, deleting
	// the first needs a step-up bound to that deletion.
	var full struct {
		Avatar struct {
			Passkeys []struct {
				ID     string `json:"id"`
				Digest string `json:"delete_action_digest"`
			} `json:"passkeys"`
		} `json:"avatar"`
	}
	me.Must("GET", "/v1/avatars/me", nil, &full)
	first := full.Avatar.Passkeys[0]
	if code, p := me.Call("DELETE", "/v1/avatars/me/passkeys/"+first.ID, nil, nil); code != 403 || !strings.Contains(p.Detail, first.Digest) {
		t.Fatalf("delete without step-up = %d %+v, want 403 naming the digest", code, p)
	}
	second := webauthntest.New()
	me.AddPasskey(auth, second)
	if code, p := me.StepUp(auth, first.Digest); code != 200 {
		t.Fatalf("step-up for delete = %d %+v", code, p)
	}
	if code, p := me.Call("DELETE", "/v1/avatars/me/passkeys/"+first.ID, nil, nil); code != 204 {
		t.Fatalf("delete after step-up = %d %+v, want 204", code, p)
	}
	me.Must("GET", "/v1/avatars/me", nil, &full)
	if len(full.Avatar.Passkeys) != 1 || full.Avatar.Passkeys[0].ID == first.ID {
		t.Fatalf("passkeys after delete = %+v, want only the second", full.Avatar.Passkeys)
	}
	// The second passkey signs in; the deleted one no longer does.
	c.Login(second, "ada")
	body := c.BeginLogin(auth, "")
	if code, _ := c.Call("POST", "/v1/webauthn/login/finish", body, nil); code < 400 {
		t.Fatalf("sign-in with a deleted passkey = %d, want refused", code)
	}
}

func TestClonedPasskeyRevokesEverySession(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()
	first := c.Register(auth, "carol")
	second := c.Login(auth, "carol")
	thief := auth.Clone()
	c.Login(thief, "carol") // the copy moves the counter on
	body := c.BeginLogin(auth, "carol")
	code, p := c.Call("POST", "/v1/webauthn/login/finish", body, nil)
	if code != 403 || !strings.Contains(p.Detail, "copied") {
		t.Fatalf("sign-in with the original after the copy = %d %+v, want 403 cloned", code, p)
	}
	for _, tok := range []string{first.Token, second.Token} {
		if code, p := c.With(tok).Call("GET", "/v1/avatars/me", nil, nil); code != 401 || !strings.Contains(p.Detail, "cloned") {
			t.Fatalf("session after clone = %d %+v, want 401 revoked for the clone", code, p)
		}
	}
	// The flagged credential stays refused, on either device: sign-in by
	// name finds no usable passkey, and a discoverable sign-in is refused
	// at finish.
	if code, p := c.Call("POST", "/v1/webauthn/login/begin", map[string]string{"name": "carol"}, nil); code != 403 {
		t.Fatalf("sign-in by name after the clone was caught = %d %+v, want 403", code, p)
	}
	if code, p := c.Call("POST", "/v1/webauthn/login/finish", c.BeginLogin(thief, ""), nil); code != 403 {
		t.Fatalf("discoverable sign-in with the copy after the clone was caught = %d %+v, want 403", code, p)
	}
	eventually(t, "the clone is audited", func() bool {
		for _, ev := range r.view.Events(audit.Query{Outcome: audit.Deny, Limit: 100}) {
			if ev.Action == "SignIn" && strings.Contains(strings.Join(ev.Reasons, " "), "cloned") {
				return true
			}
		}
		return false
	})
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()
	c.Register(auth, "dave")

	huge := append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), edge.MaxJSONBody)...)
	cases := []struct {
		name, path string
		body       []byte
		status     int
		detail     string
	}{
		{"malformed JSON", "/v1/webauthn/login/begin", []byte(`{"name":`), 400, "malformed JSON"},
		{"unknown field", "/v1/webauthn/register/begin", []byte(`{"name":"x","admin":true}`), 400, `unknown field "admin"`},
		{"not an object", "/v1/webauthn/login/finish", []byte(`[1,2]`), 400, "JSON object"},
		{"trailing data", "/v1/webauthn/login/begin", []byte(`{} {}`), 400, "data after"},
		{"oversized", "/v1/webauthn/register/begin", huge, 413, "larger than"},
		{"no ceremony", "/v1/webauthn/login/finish", []byte(`{"credential":{}}`), 400, "ceremony_id"},
		{"bad handle", "/v1/webauthn/register/begin", []byte(`{"name":"A B","display_name":"x"}`), 400, "name"},
		{"taken handle", "/v1/webauthn/register/begin", []byte(`{"name":"dave","display_name":"x"}`), 409, "taken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, p := c.Call("POST", tc.path, tc.body, nil)
			if code != tc.status || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("POST %s (%s) = %d %q, want %d containing %q", tc.path, tc.name, code, p.Detail, tc.status, tc.detail)
			}
		})
	}

	t.Run("replayed assertion", func(t *testing.T) {
		body := c.BeginLogin(auth, "dave")
		c.Must("POST", "/v1/webauthn/login/finish", body, nil)
		if code, p := c.Call("POST", "/v1/webauthn/login/finish", body, nil); code != 400 || !strings.Contains(p.Detail, "begin again") {
			t.Fatalf("replayed finish = %d %+v, want 400 used ceremony", code, p)
		}
		// The same assertion for an unknown ceremony, and for a fresh one
		// (whose challenge it does not answer), is refused.
		if code, p := c.Call("POST", "/v1/webauthn/login/finish", map[string]any{"ceremony_id": "nope", "credential": body["credential"]}, nil); code != 400 || !strings.Contains(p.Detail, "begin again") {
			t.Fatalf("assertion for an unknown ceremony = %d %+v, want 400", code, p)
		}
		var begin beginAnswer
		c.Must("POST", "/v1/webauthn/login/begin", map[string]string{}, &begin)
		if code, p := c.Call("POST", "/v1/webauthn/login/finish", map[string]any{"ceremony_id": begin.Ceremony(), "credential": body["credential"]}, nil); code != 401 {
			t.Fatalf("old assertion for a new ceremony = %d %+v, want 401", code, p)
		}
	})
	t.Run("wrong origin in the credential", func(t *testing.T) {
		evil := *c
		evil.Origin = "http://localhost:1"
		body := evil.BeginLogin(auth, "dave")
		if code, p := c.Call("POST", "/v1/webauthn/login/finish", body, nil); code != 401 || !strings.Contains(strings.ToLower(p.Detail), "origin") {
			t.Fatalf("assertion from another origin = %d %+v, want 401 naming the origin", code, p)
		}
	})
	t.Run("cross-origin browser request", func(t *testing.T) {
		req, _ := http.NewRequest("POST", c.Base+"/v1/webauthn/login/begin", strings.NewReader(`{}`))
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("cross-origin POST = %d, want 403", resp.StatusCode)
		}
	})
	t.Run("nothing changed", func(t *testing.T) {
		av, err := r.avatars.ByName(context.Background(), "dave")
		if err != nil || len(av.Credentials) != 1 {
			t.Fatalf("dave after bad input = %+v, %v; want one passkey", av, err)
		}
		if _, err := r.avatars.ByName(context.Background(), "x"); err == nil {
			t.Fatal("an avatar named x exists after refused registrations")
		}
	})
}

func TestCookieSessionsNeedCSRFToken(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()
	c.Register(auth, "erin")
	body := c.BeginLogin(auth, "erin")
	body["use_cookie"] = true
	data, _ := json.Marshal(body)
	resp, err := http.Post(c.Base+"/v1/webauthn/login/finish", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out sessionAnswer
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == edge.SessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || out.Token != "" || out.CSRF == "" {
		t.Fatalf("cookie sign-in: cookie %+v, body token %q, csrf %q; want an HttpOnly SameSite=Strict cookie, no token in the body, a CSRF token", cookie, out.Token, out.CSRF)
	}
	send := func(method, path, csrf string) int {
		req, _ := http.NewRequest(method, c.Base+path, nil)
		req.AddCookie(cookie)
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("GET", "/v1/avatars/me", ""); code != 200 {
		t.Fatalf("GET with the cookie = %d, want 200", code)
	}
	if code := send("POST", "/v1/sessions/logout", ""); code != 403 {
		t.Fatalf("POST with the cookie and no CSRF token = %d, want 403", code)
	}
	if code := send("POST", "/v1/sessions/logout", "wrong"); code != 403 {
		t.Fatalf("POST with a wrong CSRF token = %d, want 403", code)
	}
	if code := send("POST", "/v1/sessions/logout", out.CSRF); code != 200 {
		t.Fatalf("POST with the CSRF token = %d, want 200", code)
	}
	if code := send("GET", "/v1/avatars/me", ""); code != 401 {
		t.Fatalf("GET after sign-out = %d, want 401", code)
	}
}

// TestTokenFromAnotherAddressLowersTrust uses a session token from a second
// loopback address: the realm sees a different client address than the
// sign-in's and the trust score drops by the address-change penalty.
func TestTokenFromAnotherAddressLowersTrust(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	s := c.Register(webauthntest.New(), "kim")
	type meAnswer struct {
		Trust struct {
			Score   float64 `json:"score"`
			Factors []struct {
				Name string `json:"name"`
			} `json:"factors"`
		} `json:"trust"`
	}
	var before, after meAnswer
	c.With(s.Token).Must("GET", "/v1/avatars/me", nil, &before)

	elsewhere := c.With(s.Token)
	elsewhere.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	elsewhere.Must("GET", "/v1/avatars/me", nil, &after)
	if after.Trust.Score >= before.Trust.Score {
		t.Fatalf("score from another address = %.3f, want below %.3f", after.Trust.Score, before.Trust.Score)
	}
	names := []string{}
	for _, f := range after.Trust.Factors {
		names = append(names, f.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "address") {
		t.Fatalf("factors %v do not name the address change", names)
	}
}
