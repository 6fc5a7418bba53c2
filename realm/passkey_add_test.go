package realm

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
)

// TestAddingPasskeyNeedsStepUpBoundToIt checks that a session alone cannot
// add a passkey (a stolen token must not become a permanent takeover):
// without a step-up, or with one bound to another action, the begin is
// refused with 403 and the digest to confirm; with the right one it works
// once; and the avatar's other session hears of the new passkey on its
// realm WebSocket.
func TestAddingPasskeyNeedsStepUpBoundToIt(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()
	me := c.With(c.Register(auth, "hana").Token)
	other := c.Login(auth, "hana")
	ws := dialLive(t, r, other.Token)
	defer ws.Close()

	var mine struct {
		Avatar struct {
			ID       string `json:"id"`
			Digest   string `json:"add_passkey_action_digest"`
			Passkeys []any  `json:"passkeys"`
		} `json:"avatar"`
	}
	me.Must("GET", "/v1/avatars/me", nil, &mine)
	if want := digestHex(identity.AddPasskeyDigest(mine.Avatar.ID)); mine.Avatar.Digest != want {
		t.Fatalf("add_passkey_action_digest = %q, want %q", mine.Avatar.Digest, want)
	}
	begin := func() (int, edge.Problem, beginAnswer) {
		var b beginAnswer
		code, p := me.Call("POST", "/v1/webauthn/register/begin", map[string]string{}, &b)
		return code, p, b
	}
	if code, p, _ := begin(); code != 403 || !strings.Contains(p.Detail, mine.Avatar.Digest) {
		t.Fatalf("adding a passkey without a step-up = %d %+v, want 403 naming the digest", code, p)
	}
	if code, p := me.StepUp(auth, digestA); code != 200 {
		t.Fatalf("step-up for another action = %d %+v", code, p)
	}
	if code, p, _ := begin(); code != 403 || !strings.Contains(p.Detail, "step-up") {
		t.Fatalf("adding a passkey with a step-up bound to another action = %d %+v, want 403", code, p)
	}
	if code, p := me.StepUp(auth, mine.Avatar.Digest); code != 200 {
		t.Fatalf("step-up for adding a passkey = %d %+v", code, p)
	}
	code, p, add := begin()
	if code != 200 {
		t.Fatalf("adding a passkey after its step-up = %d %+v, want 200", code, p)
	}
	if code, p, _ := begin(); code != 403 {
		t.Fatalf("a second begin on one step-up = %d %+v, want 403 (a step-up is used once)", code, p)
	}
	second := webauthntest.New()
	opts, _ := json.Marshal(add)
	cred, err := second.Register(opts, c.Origin)
	if err != nil {
		t.Fatal(err)
	}
	me.Must("POST", "/v1/webauthn/register/finish", map[string]any{"ceremony_id": add.Ceremony(), "credential": json.RawMessage(cred)}, nil)
	me.Must("GET", "/v1/avatars/me", nil, &mine)
	if len(mine.Avatar.Passkeys) != 2 {
		t.Fatalf("passkeys after the add = %d, want 2", len(mine.Avatar.Passkeys))
	}
	c.Login(second, "hana")

	heard, _ := readUntil(t, ws, "passkey-added", func(m wsMsg) bool { return m.Str("type") == "passkey-added" })
	pk, _ := heard["passkey"].(map[string]any)
	if want := base64.RawURLEncoding.EncodeToString(second.CredentialIDs()[0]); pk["id"] != want {
		t.Fatalf("passkey-added names %v, want the new passkey %s", pk["id"], want)
	}
	eventually(t, "the refusals and the addition are audited", func() bool {
		denies, allows := 0, 0
		for _, ev := range r.view.Events(audit.Query{Limit: 200}) {
			if ev.Action != identity.ActionAddPasskey || ev.Actor != mine.Avatar.ID {
				continue
			}
			if ev.Outcome == audit.Deny {
				denies++
			} else {
				allows++
			}
		}
		return denies == 3 && allows == 1
	})
}
