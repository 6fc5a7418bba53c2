package realm

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// apiClient speaks the realm's JSON API the way a third-party client would.
type apiClient struct {
	t      testing.TB
	base   string
	origin string // the page origin the authenticator signs for
	token  string
	hc     *http.Client
}

func newClient(t testing.TB, r *Realm) *apiClient {
	return &apiClient{t: t, base: r.URL(), origin: r.URL(), hc: &http.Client{Timeout: 10 * time.Second}}
}

// call sends a JSON request and decodes the answer into out (or into a
// problem on failure), returning the status.
func (c *apiClient) call(method, path string, body any, out any) (int, edge.Problem) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var p edge.Problem
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &p); err != nil {
			c.t.Fatalf("%s %s = %d with a body that is not problem+json: %s", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode, p
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, p
}

// must fails the test unless the call answered 2xx.
func (c *apiClient) must(method, path string, body any, out any) {
	c.t.Helper()
	if code, p := c.call(method, path, body, out); code >= 300 {
		c.t.Fatalf("%s %s = %d %+v", method, path, code, p)
	}
}

type beginAnswer map[string]json.RawMessage

func (b beginAnswer) ceremony() string {
	var id string
	_ = json.Unmarshal(b["ceremony_id"], &id)
	return id
}

type sessionAnswer struct {
	Token   string         `json:"token"`
	CSRF    string         `json:"csrf"`
	Avatar  map[string]any `json:"avatar"`
	Session struct {
		ID string `json:"id"`
	} `json:"session"`
	Trust struct {
		State string  `json:"state"`
		Score float64 `json:"score"`
	} `json:"trust"`
}

func (c *apiClient) register(auth *webauthntest.Authenticator, name string) sessionAnswer {
	c.t.Helper()
	var begin beginAnswer
	c.must("POST", "/v1/webauthn/register/begin", map[string]string{"name": name, "display_name": strings.ToUpper(name)}, &begin)
	opts, _ := json.Marshal(begin)
	cred, err := auth.Register(opts, c.origin)
	if err != nil {
		c.t.Fatal(err)
	}
	var out sessionAnswer
	c.must("POST", "/v1/webauthn/register/finish", map[string]any{"ceremony_id": begin.ceremony(), "credential": json.RawMessage(cred)}, &out)
	return out
}

// beginLogin starts a sign-in and has the authenticator answer it; the
// finish body is returned so tests can tamper with or replay it.
func (c *apiClient) beginLogin(auth *webauthntest.Authenticator, name string) map[string]any {
	c.t.Helper()
	var begin beginAnswer
	body := map[string]string{}
	if name != "" {
		body["name"] = name
	}
	c.must("POST", "/v1/webauthn/login/begin", body, &begin)
	opts, _ := json.Marshal(begin)
	cred, err := auth.Assert(opts, c.origin)
	if err != nil {
		c.t.Fatal(err)
	}
	return map[string]any{"ceremony_id": begin.ceremony(), "credential": json.RawMessage(cred)}
}

func (c *apiClient) login(auth *webauthntest.Authenticator, name string) sessionAnswer {
	c.t.Helper()
	var out sessionAnswer
	c.must("POST", "/v1/webauthn/login/finish", c.beginLogin(auth, name), &out)
	return out
}

func (c *apiClient) stepUp(auth *webauthntest.Authenticator, digest string) (int, edge.Problem) {
	c.t.Helper()
	var begin beginAnswer
	c.must("POST", "/v1/webauthn/stepup/begin", map[string]string{"action_digest": digest}, &begin)
	opts, _ := json.Marshal(begin)
	cred, err := auth.Assert(opts, c.origin)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.call("POST", "/v1/webauthn/stepup/finish", map[string]any{"ceremony_id": begin.ceremony(), "action_digest": digest, "credential": json.RawMessage(cred)}, nil)
}

// addPasskey adds the passkey of next to the signed-in avatar, confirmed
// with a step-up by held, a passkey the avatar already has.
func (c *apiClient) addPasskey(held, next *webauthntest.Authenticator) {
	c.t.Helper()
	var me struct {
		Avatar struct {
			Digest string `json:"add_passkey_action_digest"`
		} `json:"avatar"`
	}
	c.must("GET", "/v1/avatars/me", nil, &me)
	if code, p := c.stepUp(held, me.Avatar.Digest); code != 200 {
		c.t.Fatalf("step-up for adding a passkey = %d %+v", code, p)
	}
	var add beginAnswer
	c.must("POST", "/v1/webauthn/register/begin", map[string]string{}, &add)
	opts, _ := json.Marshal(add)
	cred, err := next.Register(opts, c.origin)
	if err != nil {
		c.t.Fatal(err)
	}
	c.must("POST", "/v1/webauthn/register/finish", map[string]any{"ceremony_id": add.ceremony(), "credential": json.RawMessage(cred)}, nil)
}

func (c *apiClient) with(token string) *apiClient {
	cp := *c
	cp.token = token
	return &cp
}

func startLocalRealm(t *testing.T) *Realm {
	// localhost, not 127.0.0.1: the relying party id is "localhost" and
	// WebAuthn binds passkeys to it.
	return startRealm(t, Config{Listen: "localhost:0"})
}

const digestA = "0x1111111111111111111111111111111111111111111111111111111111111111"
const digestB = "0x2222222222222222222222222222222222222222222222222222222222222222"

func TestPasskeyJourney(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()

	reg := c.register(auth, "ada")
	if reg.Token == "" || !strings.HasPrefix(reg.Token, "zrs_") || reg.Session.ID == "" {
		t.Fatalf("register answer = %+v, want a zrs_ token and a session", reg)
	}
	me := c.with(reg.Token)
	var mine struct {
		Avatar struct {
			Name     string           `json:"name"`
			Roles    []string         `json:"roles"`
			Passkeys []map[string]any `json:"passkeys"`
		} `json:"avatar"`
		Trust map[string]any `json:"trust"`
		CSRF  string         `json:"csrf"`
	}
	me.must("GET", "/v1/avatars/me", nil, &mine)
	if mine.Avatar.Name != "ada" || len(mine.Avatar.Passkeys) != 1 || mine.CSRF != "" {
		t.Fatalf("GET /v1/avatars/me = %+v, want ada with one passkey and no CSRF token for a bearer session", mine)
	}
	if ctxRec, _ := mine.Trust["context"].(map[string]any); ctxRec["state"] == nil || ctxRec["passkey_age_s"] == nil {
		t.Fatalf("trust context = %v, want the Cedar trust record", mine.Trust["context"])
	}

	// Sign out: the token stops working.
	me.must("POST", "/v1/sessions/logout", nil, nil)
	if code, p := me.call("GET", "/v1/avatars/me", nil, nil); code != 401 || !strings.Contains(p.Detail, "revoked") {
		t.Fatalf("GET /v1/avatars/me after logout = %d %+v, want 401 revoked", code, p)
	}

	// Sign in without a name (discoverable) and by name.
	in := c.login(auth, "")
	if in.Avatar["name"] != "ada" {
		t.Fatalf("discoverable sign-in signed in %v, want ada", in.Avatar["name"])
	}
	in2 := c.login(auth, "ada")
	me = c.with(in2.Token)

	// Step up bound to digest A; then a step-up ceremony begun for A
	// finished claiming B is refused.
	if code, p := me.stepUp(auth, digestA); code != 200 {
		t.Fatalf("step-up for A = %d %+v", code, p)
	}
	var begin beginAnswer
	me.must("POST", "/v1/webauthn/stepup/begin", map[string]string{"action_digest": digestA}, &begin)
	opts, _ := json.Marshal(begin)
	cred, _ := auth.Assert(opts, c.origin)
	if code, p := me.call("POST", "/v1/webauthn/stepup/finish", map[string]any{"ceremony_id": begin.ceremony(), "action_digest": digestB, "credential": json.RawMessage(cred)}, nil); code != 400 || !strings.Contains(p.Detail, "something else") {
		t.Fatalf("step-up for A presented for B = %d %+v, want 400 mismatch", code, p)
	}
	// Another avatar cannot finish ada's step-up ceremony.
	bob := c.with(c.register(webauthntest.New(), "bob").Token)
	if code, _ := bob.call("POST", "/v1/webauthn/stepup/finish", map[string]any{"ceremony_id": begin.ceremony(), "action_digest": digestA, "credential": json.RawMessage(cred)}, nil); code < 400 {
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
	me.must("GET", "/v1/avatars/me", nil, &full)
	first := full.Avatar.Passkeys[0]
	if code, p := me.call("DELETE", "/v1/avatars/me/passkeys/"+first.ID, nil, nil); code != 403 || !strings.Contains(p.Detail, first.Digest) {
		t.Fatalf("delete without step-up = %d %+v, want 403 naming the digest", code, p)
	}
	second := webauthntest.New()
	me.addPasskey(auth, second)
	if code, p := me.stepUp(auth, first.Digest); code != 200 {
		t.Fatalf("step-up for delete = %d %+v", code, p)
	}
	if code, p := me.call("DELETE", "/v1/avatars/me/passkeys/"+first.ID, nil, nil); code != 204 {
		t.Fatalf("delete after step-up = %d %+v, want 204", code, p)
	}
	me.must("GET", "/v1/avatars/me", nil, &full)
	if len(full.Avatar.Passkeys) != 1 || full.Avatar.Passkeys[0].ID == first.ID {
		t.Fatalf("passkeys after delete = %+v, want only the second", full.Avatar.Passkeys)
	}
	// The second passkey signs in; the deleted one no longer does.
	c.login(second, "ada")
	body := c.beginLogin(auth, "")
	if code, _ := c.call("POST", "/v1/webauthn/login/finish", body, nil); code < 400 {
		t.Fatalf("sign-in with a deleted passkey = %d, want refused", code)
	}
}

func TestClonedPasskeyRevokesEverySession(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()
	first := c.register(auth, "carol")
	second := c.login(auth, "carol")
	thief := auth.Clone()
	c.login(thief, "carol") // the copy moves the counter on
	body := c.beginLogin(auth, "carol")
	code, p := c.call("POST", "/v1/webauthn/login/finish", body, nil)
	if code != 403 || !strings.Contains(p.Detail, "copied") {
		t.Fatalf("sign-in with the original after the copy = %d %+v, want 403 cloned", code, p)
	}
	for _, tok := range []string{first.Token, second.Token} {
		if code, p := c.with(tok).call("GET", "/v1/avatars/me", nil, nil); code != 401 || !strings.Contains(p.Detail, "cloned") {
			t.Fatalf("session after clone = %d %+v, want 401 revoked for the clone", code, p)
		}
	}
	// The flagged credential stays refused, on either device: sign-in by
	// name finds no usable passkey, and a discoverable sign-in is refused
	// at finish.
	if code, p := c.call("POST", "/v1/webauthn/login/begin", map[string]string{"name": "carol"}, nil); code != 403 {
		t.Fatalf("sign-in by name after the clone was caught = %d %+v, want 403", code, p)
	}
	if code, p := c.call("POST", "/v1/webauthn/login/finish", c.beginLogin(thief, ""), nil); code != 403 {
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
	c.register(auth, "dave")

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
			code, p := c.call("POST", tc.path, tc.body, nil)
			if code != tc.status || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("POST %s (%s) = %d %q, want %d containing %q", tc.path, tc.name, code, p.Detail, tc.status, tc.detail)
			}
		})
	}

	t.Run("replayed assertion", func(t *testing.T) {
		body := c.beginLogin(auth, "dave")
		c.must("POST", "/v1/webauthn/login/finish", body, nil)
		if code, p := c.call("POST", "/v1/webauthn/login/finish", body, nil); code != 400 || !strings.Contains(p.Detail, "begin again") {
			t.Fatalf("replayed finish = %d %+v, want 400 used ceremony", code, p)
		}
		// The same assertion for an unknown ceremony, and for a fresh one
		// (whose challenge it does not answer), is refused.
		if code, p := c.call("POST", "/v1/webauthn/login/finish", map[string]any{"ceremony_id": "nope", "credential": body["credential"]}, nil); code != 400 || !strings.Contains(p.Detail, "begin again") {
			t.Fatalf("assertion for an unknown ceremony = %d %+v, want 400", code, p)
		}
		var begin beginAnswer
		c.must("POST", "/v1/webauthn/login/begin", map[string]string{}, &begin)
		if code, p := c.call("POST", "/v1/webauthn/login/finish", map[string]any{"ceremony_id": begin.ceremony(), "credential": body["credential"]}, nil); code != 401 {
			t.Fatalf("old assertion for a new ceremony = %d %+v, want 401", code, p)
		}
	})
	t.Run("wrong origin in the credential", func(t *testing.T) {
		evil := *c
		evil.origin = "http://localhost:1"
		body := evil.beginLogin(auth, "dave")
		if code, p := c.call("POST", "/v1/webauthn/login/finish", body, nil); code != 401 || !strings.Contains(strings.ToLower(p.Detail), "origin") {
			t.Fatalf("assertion from another origin = %d %+v, want 401 naming the origin", code, p)
		}
	})
	t.Run("cross-origin browser request", func(t *testing.T) {
		req, _ := http.NewRequest("POST", c.base+"/v1/webauthn/login/begin", strings.NewReader(`{}`))
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
	c.register(auth, "erin")
	body := c.beginLogin(auth, "erin")
	body["use_cookie"] = true
	data, _ := json.Marshal(body)
	resp, err := http.Post(c.base+"/v1/webauthn/login/finish", "application/json", bytes.NewReader(data))
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
		req, _ := http.NewRequest(method, c.base+path, nil)
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
	s := c.register(webauthntest.New(), "kim")
	type meAnswer struct {
		Trust struct {
			Score   float64 `json:"score"`
			Factors []struct {
				Name string `json:"name"`
			} `json:"factors"`
		} `json:"trust"`
	}
	var before, after meAnswer
	c.with(s.Token).must("GET", "/v1/avatars/me", nil, &before)

	elsewhere := c.with(s.Token)
	elsewhere.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	elsewhere.must("GET", "/v1/avatars/me", nil, &after)
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
