package realm

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

type avatarPage = realmtest.AvatarPage

type rolesAnswer struct {
	Avatar struct {
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	} `json:"avatar"`
	Before []string `json:"before"`
}

// digestHex publishes an action digest as the API does (edge.DigestHex).
var digestHex = edge.DigestHex

func rolesOf(s sessionAnswer) []string { return s.Roles() }

// auditEvents reads the decisions the realm recorded (realmtest).
func auditEvents(t *testing.T, r *Realm, actor, action string) []audit.Event {
	return realmtest.AuditEvents(t, r, actor, action)
}

// roleDigest asks the realm for the digest of a role change.
func roleDigest(c *apiClient, id string, roles []string) string {
	c.T.Helper()
	var d struct {
		ActionDigest string `json:"action_digest"`
	}
	c.Must("POST", "/v1/avatars/"+id+"/roles/digest", map[string]any{"roles": roles}, &d)
	return d.ActionDigest
}

// changeRoles steps up for the change and makes it.
func changeRoles(c *apiClient, auth *webauthntest.Authenticator, id string, roles []string) (int, edge.Problem, rolesAnswer) {
	c.T.Helper()
	if code, p := c.StepUp(auth, roleDigest(c, id, roles)); code != http.StatusOK {
		c.T.Fatalf("step-up for roles %q of %s = %d %+v", roles, id, code, p)
	}
	var out rolesAnswer
	code, p := c.Call("PUT", "/v1/avatars/"+id+"/roles", map[string]any{"roles": roles}, &out)
	return code, p, out
}

func TestBootstrapAdminAndRoleAPI(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	bossKey, aliceKey := webauthntest.New(), webauthntest.New()
	bossSess := c.Register(bossKey, "boss")
	aliceSess := c.Register(aliceKey, "alice")
	boss, alice := c.With(bossSess.Token), c.With(aliceSess.Token)
	bossID, aliceID := bossSess.Avatar["id"].(string), aliceSess.Avatar["id"].(string)

	if got := rolesOf(bossSess); !slices.Equal(got, []string{"admin", "operator", "supervisor"}) {
		t.Fatalf("first avatar's roles = %q, want admin, operator, supervisor", got)
	}
	if got := rolesOf(aliceSess); !slices.Equal(got, []string{"visitor"}) {
		t.Fatalf("second avatar's roles = %q, want visitor", got)
	}
	eventually(t, "the bootstrap is audited once", func() bool {
		ev := auditEvents(t, r, "realm:"+r.Node(), "BootstrapAdmin")
		return len(ev) == 1 && ev[0].Resource == identity.AvatarResource(bossID) && len(ev[0].Reasons) > 0 && ev[0].Outcome == audit.Allow
	})

	// Roles as stored: what every later request is decided on.
	rolesNow := func(id string) []string {
		t.Helper()
		var page avatarPage
		boss.Must("GET", "/v1/avatars", nil, &page)
		for _, a := range page.Avatars {
			if a.ID == id {
				return a.Roles
			}
		}
		t.Fatalf("avatar %s not listed", id)
		return nil
	}

	t.Run("list", func(t *testing.T) {
		var page avatarPage
		boss.Must("GET", "/v1/avatars?limit=1", nil, &page)
		if len(page.Avatars) != 1 || page.Avatars[0].Name != "alice" || page.Next != "alice" {
			t.Fatalf("first page = %+v, want alice and a next cursor", page)
		}
		boss.Must("GET", "/v1/avatars?limit=1&after="+page.Next, nil, &page)
		if len(page.Avatars) != 1 || page.Avatars[0].Name != "boss" || page.Next != "" {
			t.Fatalf("second page = %+v, want boss and no next", page)
		}
		for _, q := range []string{"limit=0", "limit=501", "limit=x", "after=NOT-A-NAME"} {
			if code, _ := boss.Call("GET", "/v1/avatars?"+q, nil, nil); code != http.StatusBadRequest {
				t.Errorf("GET /v1/avatars?%s = %d, want 400", q, code)
			}
		}
	})

	t.Run("non-admin refused", func(t *testing.T) {
		if code, p := alice.Call("GET", "/v1/avatars", nil, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, "admin role") {
			t.Fatalf("GET /v1/avatars by a visitor = %d %+v, want 403 naming the admin role", code, p)
		}
		// Even with a step-up bound to the change, a visitor cannot make
		// itself an administrator.
		digest := digestHex(identity.SetRolesDigest(aliceID, []string{"admin"}))
		if code, p := alice.StepUp(aliceKey, digest); code != http.StatusOK {
			t.Fatalf("step-up = %d %+v", code, p)
		}
		if code, p := alice.Call("PUT", "/v1/avatars/"+aliceID+"/roles", map[string]any{"roles": []string{"admin"}}, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, "admin role") {
			t.Fatalf("PUT own roles by a visitor = %d %+v, want 403", code, p)
		}
		if code, _ := alice.Call("POST", "/v1/avatars/"+aliceID+"/roles/digest", map[string]any{"roles": []string{"admin"}}, nil); code != http.StatusForbidden {
			t.Fatalf("roles digest by a visitor = %d, want 403", code)
		}
		if got := rolesNow(aliceID); !slices.Equal(got, []string{"visitor"}) {
			t.Fatalf("after refusals alice has %q, want visitor", got)
		}
		eventually(t, "the refusal is audited with its reason", func() bool {
			for _, e := range auditEvents(t, r, aliceID, "ChangeRoles") {
				if e.Outcome == audit.Deny && strings.Contains(strings.Join(e.Reasons, " "), "admin role") {
					return true
				}
			}
			return false
		})
	})

	t.Run("no step-up", func(t *testing.T) {
		code, p := boss.Call("PUT", "/v1/avatars/"+aliceID+"/roles", map[string]any{"roles": []string{"operator"}}, nil)
		want := digestHex(identity.SetRolesDigest(aliceID, []string{"operator"}))
		if code != http.StatusForbidden || !strings.Contains(p.Detail, want) {
			t.Fatalf("PUT roles without a step-up = %d %+v, want 403 naming digest %s", code, p, want)
		}
		// A step-up bound to another change does not count.
		if code, p := boss.StepUp(bossKey, roleDigest(boss, aliceID, []string{"supervisor"})); code != http.StatusOK {
			t.Fatalf("step-up = %d %+v", code, p)
		}
		if code, _ := boss.Call("PUT", "/v1/avatars/"+aliceID+"/roles", map[string]any{"roles": []string{"operator"}}, nil); code != http.StatusForbidden {
			t.Fatalf("PUT roles with a step-up for other roles = %d, want 403", code)
		}
		if got := rolesNow(aliceID); !slices.Equal(got, []string{"visitor"}) {
			t.Fatalf("after refusals alice has %q, want visitor", got)
		}
		eventually(t, "the refusal is audited with its reason", func() bool {
			for _, e := range auditEvents(t, r, bossID, "ChangeRoles") {
				if e.Outcome == audit.Deny && strings.Contains(strings.Join(e.Reasons, " "), "step-up") {
					return true
				}
			}
			return false
		})
	})

	t.Run("grant", func(t *testing.T) {
		// The digest is over the normalized roles: duplicates dropped.
		code, p, got := changeRoles(boss, bossKey, aliceID, []string{"operator", "visitor", "operator"})
		if code != http.StatusOK || !slices.Equal(got.Avatar.Roles, []string{"operator", "visitor"}) || !slices.Equal(got.Before, []string{"visitor"}) {
			t.Fatalf("PUT roles = %d %+v %+v, want operator, visitor (before: visitor)", code, p, got)
		}
		if code, _ := boss.Call("PUT", "/v1/avatars/"+aliceID+"/roles", map[string]any{"roles": []string{"operator", "visitor"}}, nil); code != http.StatusForbidden {
			t.Fatalf("PUT roles reusing a spent step-up = %d, want 403", code)
		}
		var me struct {
			Avatar struct {
				Roles []string `json:"roles"`
			} `json:"avatar"`
		}
		alice.Must("GET", "/v1/avatars/me", nil, &me)
		if !slices.Equal(me.Avatar.Roles, []string{"operator", "visitor"}) {
			t.Fatalf("alice's own view of her roles = %q", me.Avatar.Roles)
		}
		eventually(t, "the change is audited with before and after", func() bool {
			for _, e := range auditEvents(t, r, bossID, "ChangeRoles") {
				if e.Outcome == audit.Allow && e.Resource == identity.AvatarResource(aliceID) && len(e.Reasons) == 2 &&
					fmt.Sprint(e.Signals["before"]) == "[visitor]" && fmt.Sprint(e.Signals["after"]) == "[operator visitor]" {
					return true
				}
			}
			return false
		})
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		tooMany := make([]string, 33)
		for i := range tooMany {
			tooMany[i] = fmt.Sprintf("role-%d", i)
		}
		unknown := "av_" + strings.Repeat("0", 32)
		cases := []struct {
			name, path string
			body       any
			status     int
			detail     string
		}{
			{"role syntax", "/v1/avatars/" + aliceID + "/roles", map[string]any{"roles": []string{"Admin"}}, 400, "role"},
			{"empty role", "/v1/avatars/" + aliceID + "/roles", map[string]any{"roles": []string{""}}, 400, "role"},
			{"too many roles", "/v1/avatars/" + aliceID + "/roles", map[string]any{"roles": tooMany}, 400, "at most 32"},
			{"no roles field", "/v1/avatars/" + aliceID + "/roles", map[string]any{}, 400, "roles is required"},
			{"null roles", "/v1/avatars/" + aliceID + "/roles", []byte(`{"roles": null}`), 400, "roles is required"},
			{"roles not a list", "/v1/avatars/" + aliceID + "/roles", []byte(`{"roles": "admin"}`), 400, "roles"},
			{"unknown field", "/v1/avatars/" + aliceID + "/roles", map[string]any{"roles": []string{"x"}, "extra": 1}, 400, "unknown field"},
			{"unknown avatar", "/v1/avatars/" + unknown + "/roles", map[string]any{"roles": []string{"operator"}}, 404, "no such avatar"},
			{"malformed id", "/v1/avatars/bob/roles", map[string]any{"roles": []string{"operator"}}, 400, "avatar id"},
		}
		for _, tc := range cases {
			for _, method := range []string{"PUT", "POST"} {
				path := tc.path
				if method == "POST" {
					path += "/digest"
				}
				code, p := boss.Call(method, path, tc.body, nil)
				if code != tc.status || !strings.Contains(p.Detail, tc.detail) {
					t.Errorf("%s: %s %s = %d %q, want %d with %q", tc.name, method, path, code, p.Detail, tc.status, tc.detail)
				}
			}
		}
		if got := rolesNow(aliceID); !slices.Equal(got, []string{"operator", "visitor"}) {
			t.Fatalf("after bad input alice has %q, want operator, visitor", got)
		}
		if got := rolesNow(bossID); !slices.Equal(got, []string{"admin", "operator", "supervisor"}) {
			t.Fatalf("after bad input boss has %q", got)
		}
	})

	t.Run("last admin", func(t *testing.T) {
		code, p, _ := changeRoles(boss, bossKey, bossID, []string{"operator"})
		if code != http.StatusConflict || !strings.Contains(p.Detail, "last administrator") {
			t.Fatalf("the last admin giving up admin = %d %+v, want 409", code, p)
		}
		if got := rolesNow(bossID); !slices.Equal(got, []string{"admin", "operator", "supervisor"}) {
			t.Fatalf("after the refusal boss has %q", got)
		}
		// The refusal did not spend the step-up: once there is another
		// administrator, the same confirmation makes the same change.
		bossStepsDown := func() int {
			code, _ := boss.Call("PUT", "/v1/avatars/"+bossID+"/roles", map[string]any{"roles": []string{"operator"}}, nil)
			return code
		}
		eventually(t, "the refusal is audited with its reason", func() bool {
			for _, e := range auditEvents(t, r, bossID, "ChangeRoles") {
				if e.Outcome == audit.Deny && e.Resource == identity.AvatarResource(bossID) && strings.Contains(strings.Join(e.Reasons, " "), "last administrator") {
					return true
				}
			}
			return false
		})
		// With a second administrator, the first may step down, and the
		// new one then lists avatars.
		if code, p, _ := changeRoles(boss, bossKey, aliceID, []string{"admin"}); code != http.StatusOK {
			t.Fatalf("granting admin = %d %+v", code, p)
		}
		if code := bossStepsDown(); code != http.StatusOK {
			t.Fatalf("stepping down beside another admin, with the step-up the refusal left unspent = %d", code)
		}
		if code, _ := boss.Call("GET", "/v1/avatars", nil, nil); code != http.StatusForbidden {
			t.Fatalf("GET /v1/avatars by a former admin = %d, want 403", code)
		}
		if code, _ := alice.Call("GET", "/v1/avatars", nil, nil); code != http.StatusOK {
			t.Fatalf("GET /v1/avatars by the new admin = %d, want 200", code)
		}
	})
}

func TestBootstrapAdminOff(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", DisableBootstrapAdmin: true})
	c := newClient(t, r)
	first := c.Register(webauthntest.New(), "first")
	if got := rolesOf(first); !slices.Equal(got, []string{"visitor"}) {
		t.Fatalf("first avatar with the bootstrap off has %q, want visitor", got)
	}
	if code, _ := c.With(first.Token).Call("GET", "/v1/avatars", nil, nil); code != http.StatusForbidden {
		t.Fatalf("GET /v1/avatars = %d, want 403", code)
	}
}

func TestBootstrapAdminConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"roles without admin": {DataDir: "x", BootstrapAdminRoles: []string{"operator"}},
		"bad role":            {DataDir: "x", BootstrapAdminRoles: []string{"admin", "Bad"}},
		"bad admin role":      {DataDir: "x", AdminRole: "Root!"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%s) = nil error, want ErrConfig", name)
		}
	}
	if _, err := New(Config{DataDir: "x", DisableBootstrapAdmin: true, BootstrapAdminRoles: []string{"operator"}}); err != nil {
		t.Errorf("New(bootstrap off, roles without admin) = %v, want nil: the roles are unused", err)
	}
}
