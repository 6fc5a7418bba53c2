package realmtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Client speaks a realm's JSON API the way a third-party client would.
type Client struct {
	T      testing.TB
	Base   string
	Origin string // the page origin the authenticator signs for
	Token  string
	HTTP   *http.Client
}

// NewClient is a client of the realm at url, whose pages are served from
// the same origin.
func NewClient(t testing.TB, url string) *Client {
	return &Client{T: t, Base: url, Origin: url, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Call sends a JSON request and decodes the answer into out (or into a
// problem on failure), returning the status.
func (c *Client) Call(method, path string, body any, out any) (int, edge.Problem) {
	c.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.T.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		c.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var p edge.Problem
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &p); err != nil {
			c.T.Fatalf("%s %s = %d with a body that is not problem+json: %s", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode, p
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.T.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, p
}

// Must fails the test unless the call answered 2xx.
func (c *Client) Must(method, path string, body any, out any) {
	c.T.Helper()
	if code, p := c.Call(method, path, body, out); code >= 300 {
		c.T.Fatalf("%s %s = %d %+v", method, path, code, p)
	}
}

// With is a copy of the client that sends token.
func (c *Client) With(token string) *Client {
	cp := *c
	cp.Token = token
	return &cp
}

// Begin is the answer to the start of a WebAuthn ceremony.
type Begin map[string]json.RawMessage

// Ceremony is the id the finish of the ceremony names.
func (b Begin) Ceremony() string {
	var id string
	_ = json.Unmarshal(b["ceremony_id"], &id)
	return id
}

// Session is the answer to a finished registration or sign-in.
type Session struct {
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

// Register signs up a new avatar called name with auth's passkey.
func (c *Client) Register(auth *webauthntest.Authenticator, name string) Session {
	c.T.Helper()
	var begin Begin
	c.Must("POST", "/v1/webauthn/register/begin", map[string]string{"name": name, "display_name": strings.ToUpper(name)}, &begin)
	opts, _ := json.Marshal(begin)
	cred, err := auth.Register(opts, c.Origin)
	if err != nil {
		c.T.Fatal(err)
	}
	var out Session
	c.Must("POST", "/v1/webauthn/register/finish", map[string]any{"ceremony_id": begin.Ceremony(), "credential": json.RawMessage(cred)}, &out)
	return out
}

// BeginLogin starts a sign-in and has the authenticator answer it; the
// finish body is returned so tests can tamper with or replay it.
func (c *Client) BeginLogin(auth *webauthntest.Authenticator, name string) map[string]any {
	c.T.Helper()
	var begin Begin
	body := map[string]string{}
	if name != "" {
		body["name"] = name
	}
	c.Must("POST", "/v1/webauthn/login/begin", body, &begin)
	opts, _ := json.Marshal(begin)
	cred, err := auth.Assert(opts, c.Origin)
	if err != nil {
		c.T.Fatal(err)
	}
	return map[string]any{"ceremony_id": begin.Ceremony(), "credential": json.RawMessage(cred)}
}

// Login signs in as name (or with a discoverable passkey when name is "").
func (c *Client) Login(auth *webauthntest.Authenticator, name string) Session {
	c.T.Helper()
	var out Session
	c.Must("POST", "/v1/webauthn/login/finish", c.BeginLogin(auth, name), &out)
	return out
}

// StepUp proves presence again with auth's passkey, bound to digest.
func (c *Client) StepUp(auth *webauthntest.Authenticator, digest string) (int, edge.Problem) {
	c.T.Helper()
	var begin Begin
	c.Must("POST", "/v1/webauthn/stepup/begin", map[string]string{"action_digest": digest}, &begin)
	opts, _ := json.Marshal(begin)
	cred, err := auth.Assert(opts, c.Origin)
	if err != nil {
		c.T.Fatal(err)
	}
	return c.Call("POST", "/v1/webauthn/stepup/finish", map[string]any{"ceremony_id": begin.Ceremony(), "action_digest": digest, "credential": json.RawMessage(cred)}, nil)
}

// AddPasskey adds the passkey of next to the signed-in avatar, confirmed
// with a step-up by held, a passkey the avatar already has.
func (c *Client) AddPasskey(held, next *webauthntest.Authenticator) {
	c.T.Helper()
	var me struct {
		Avatar struct {
			Digest string `json:"add_passkey_action_digest"`
		} `json:"avatar"`
	}
	c.Must("GET", "/v1/avatars/me", nil, &me)
	if code, p := c.StepUp(held, me.Avatar.Digest); code != 200 {
		c.T.Fatalf("step-up for adding a passkey = %d %+v", code, p)
	}
	var add Begin
	c.Must("POST", "/v1/webauthn/register/begin", map[string]string{}, &add)
	opts, _ := json.Marshal(add)
	cred, err := next.Register(opts, c.Origin)
	if err != nil {
		c.T.Fatal(err)
	}
	c.Must("POST", "/v1/webauthn/register/finish", map[string]any{"ceremony_id": add.Ceremony(), "credential": json.RawMessage(cred)}, nil)
}

// Get fetches url and decodes its JSON body into v (when not nil),
// returning the status.
func Get(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// Action digests to step up for, when a test needs any two.
const (
	DigestA = "0x1111111111111111111111111111111111111111111111111111111111111111"
	DigestB = "0x2222222222222222222222222222222222222222222222222222222222222222"
)

// Roles are the roles the session's avatar holds.
func (s Session) Roles() []string {
	raw, _ := s.Avatar["roles"].([]any)
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i], _ = r.(string)
	}
	return out
}

// AvatarPage is GET /v1/avatars's answer.
type AvatarPage struct {
	Avatars []struct {
		ID    string   `json:"id"`
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	} `json:"avatars"`
	Next string `json:"next"`
}
