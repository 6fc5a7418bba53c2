package identity

import (
	"strings"
	"testing"
)

// TestRoleProblems: good settings have none; each bad one is named; the
// bootstrap's roles are checked only while the bootstrap is on.
func TestRoleProblems(t *testing.T) {
	if p := RoleProblems("admin", []string{"admin", "auditor"}, []string{"admin", "operator"}, false); len(p) != 0 {
		t.Fatalf("good settings: %v", p)
	}
	p := RoleProblems("Not A Role", []string{"auditor", "bad role"}, []string{"operator"}, false)
	if len(p) != 3 || !strings.HasPrefix(p[0], "admin role:") || !strings.HasPrefix(p[1], "audit roles:") || !strings.Contains(p[2], "must include the admin role") {
		t.Fatalf("bad settings: %q, want the admin role, the audit roles and the bootstrap named", p)
	}
	if p := RoleProblems("admin", nil, []string{"operator"}, true); len(p) != 0 {
		t.Fatalf("bootstrap off: %v, want its roles unchecked", p)
	}
}
