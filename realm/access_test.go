package realm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/policy"
)

type accessAnswer struct {
	Decisions []policy.View `json:"decisions"`
	Trust     struct {
		State string `json:"state"`
	} `json:"trust"`
}

func (a accessAnswer) find(resource string) (policy.View, bool) {
	for _, d := range a.Decisions {
		if d.Resource == resource {
			return d, true
		}
	}
	return policy.View{}, false
}

func TestSceneAccessFollowsPoliciesAndTrust(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	// The realm's first avatar is its administrator and an operator (the
	// bootstrap); ivan, the second, is a visitor.
	boss := c.Register(webauthntest.New(), "boss")
	s := c.Register(webauthntest.New(), "ivan")
	var got accessAnswer
	c.With(s.Token).Must("GET", "/v1/scenes/foundry/access", nil, &got)
	if got.Trust.State != "trusted" {
		t.Fatalf("trust after sign-in = %q, want trusted", got.Trust.State)
	}
	for resource, allow := range map[string]bool{
		`Scene::"foundry"`:   true,  // anyone trusted may join
		`Zone::"lobby"`:      true,  // an open zone
		`Zone::"press-bay"`:  false, // restricted: a visitor is not an operator
		`Zone::"robot-cell"`: false,
	} {
		d, ok := got.find(resource)
		if !ok || d.Allow != allow {
			t.Errorf("decision on %s = %+v, want allow=%v", resource, d, allow)
		}
		if !d.Allow && d.Reason == "" {
			t.Errorf("deny on %s has no reason", resource)
		}
	}
	var operator accessAnswer
	c.With(boss.Token).Must("GET", "/v1/scenes/foundry/access", nil, &operator)
	for _, zone := range []string{`Zone::"press-bay"`, `Zone::"robot-cell"`} {
		if d, ok := operator.find(zone); !ok || !d.Allow {
			t.Errorf("operator's decision on %s = %+v, want allow", zone, d)
		}
	}
	if code, _ := c.Call("GET", "/v1/scenes/foundry/access", nil, nil); code != 401 {
		t.Fatalf("access without a session = %d, want 401", code)
	}
}

// TestSceneCanRequireAttestedAuthenticators loads a scene whose policy
// admits only attested passkeys: a passkey with "none" attestation is
// refused with the policy's id.
func TestSceneCanRequireAttestedAuthenticators(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	scene := "id: vault\nname: Vault\nzones:\n  - id: hall\n    name: Hall\n    min: [0, 0, 0]\n    max: [10, 3, 10]\npolicies:\n  - policies.cedar\n"
	cedar := `@id("join-vault")
permit (principal is Avatar, action == Action::"JoinScene", resource is Scene)
when { context.trust.state == "trusted" };

@id("attested-authenticators-only")
forbid (principal, action, resource)
unless { context has authenticator && context.authenticator.attested };
`
	os.WriteFile(filepath.Join(dir, "scene.yaml"), []byte(scene), 0o600)
	os.WriteFile(filepath.Join(dir, "policies.cedar"), []byte(cedar), 0o600)

	r := startRealm(t, Config{Listen: "localhost:0", ScenesDir: filepath.Dir(dir)})
	c := newClient(t, r)
	s := c.Register(webauthntest.New(), "judy") // software authenticator: "none" attestation
	var got accessAnswer
	c.With(s.Token).Must("GET", "/v1/scenes/vault/access", nil, &got)
	d, ok := got.find(`Scene::"vault"`)
	if !ok || d.Allow || !strings.Contains(strings.Join(d.Policies, ","), "attested-authenticators-only") {
		t.Fatalf("joining the vault with an unattested passkey = %+v, want a deny by attested-authenticators-only", d)
	}
}
