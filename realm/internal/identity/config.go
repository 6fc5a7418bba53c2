package identity

import (
	"fmt"
	"slices"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/problem"
)

// RoleProblems says, in words for the operator, what is wrong with a
// node's role settings: the admin role, the audit roles and, unless the
// bootstrap is off, the bootstrap administrator's roles, which must
// include the admin role (else the first administrator could grant
// nothing). None wrong is an empty list.
func RoleProblems(adminRole string, auditRoles, bootstrapRoles []string, bootstrapOff bool) []string {
	var p []string
	if _, err := avatar.NormalizeRoles([]string{adminRole}); err != nil {
		p = append(p, fmt.Sprintf("admin role: %v", problem.Detail(err)))
	}
	if _, err := avatar.NormalizeRoles(auditRoles); err != nil {
		p = append(p, fmt.Sprintf("audit roles: %v", problem.Detail(err)))
	}
	if bootstrapOff {
		return p
	}
	roles, err := avatar.NormalizeRoles(bootstrapRoles)
	switch {
	case err != nil:
		p = append(p, fmt.Sprintf("bootstrap admin roles: %v", problem.Detail(err)))
	case !slices.Contains(roles, adminRole):
		p = append(p, fmt.Sprintf("bootstrap admin roles %q must include the admin role %q (or disable the bootstrap)", roles, adminRole))
	}
	return p
}
