package identity

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Who administers the realm: the role API with which administrators grant
// and take roles. (The bootstrap of the first administrator is in
// bootstrap.go.)

// roleAdmin is the API's role administration: listing avatars and
// changing their roles, each change confirmed with a step-up. It is the
// API seen through one concern, so the API's own methods stay about
// ceremonies and sessions.
type roleAdmin struct{ *API }

// The page of GET /v1/avatars: its default and largest size.
const (
	DefaultAvatarPage = 50
	MaxAvatarPage     = 500
)

// requireAdmin refuses, and audits the refusal of, a caller without the
// admin role.
func (a roleAdmin) requireAdmin(req *http.Request, p edge.Principal, action, resource string) error {
	if slices.Contains(p.Avatar.Roles, a.AdminRole) {
		return nil
	}
	err := &edge.Error{Status: http.StatusForbidden, Detail: "this needs the " + a.AdminRole + " role, which this avatar does not hold"}
	a.auditDeny(req, p.Avatar.ID, action, resource, err)
	return err
}

// handleListAvatars pages through the realm's avatars by name, for an
// administrator.
func (a roleAdmin) handleListAvatars(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	const action, resource = "ListAvatars", "Avatars"
	if err := a.requireAdmin(req, p, action, resource); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	q := req.URL.Query()
	limit := DefaultAvatarPage
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAvatarPage {
			a.edge.WriteError(w, req, edge.BadRequest("limit must be a whole number from 1 to "+strconv.Itoa(MaxAvatarPage)))
			return
		}
		limit = n
	}
	list, next, err := a.Directory.List(req.Context(), q.Get("after"), limit)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, av := range list {
		out = append(out, avatarSummary(av))
	}
	a.auditAllow(req, p.Avatar.ID, action, resource, "the caller holds the "+a.AdminRole+" role",
		map[string]any{"after": q.Get("after"), "count": len(out)})
	edge.WriteJSON(w, http.StatusOK, map[string]any{"avatars": out, "next": next})
}

// rolesRequest is the body of a role change and of its digest.
type rolesRequest struct {
	Roles *[]string `json:"roles"`
}

// readRoleChange checks the caller, the body and the target of a role
// change and returns the target and the roles in the form that is stored
// and digested. Every refusal is audited.
func (a roleAdmin) readRoleChange(w http.ResponseWriter, req *http.Request, p edge.Principal, action string) (*avatar.Avatar, []string, error) {
	id := req.PathValue("id")
	resource := AvatarResource(id)
	if err := a.requireAdmin(req, p, action, resource); err != nil {
		return nil, nil, err
	}
	deny := func(err error) (*avatar.Avatar, []string, error) {
		a.auditDeny(req, p.Avatar.ID, action, resource, err)
		return nil, nil, err
	}
	var body rolesRequest
	if err := edge.DecodeJSON(w, req, &body); err != nil {
		return deny(err)
	}
	if body.Roles == nil {
		return deny(edge.BadRequest(`roles is required: send {"roles": ["operator", ...]}, the avatar's complete new set of roles`))
	}
	roles, err := avatar.NormalizeRoles(*body.Roles)
	if err != nil {
		return deny(err)
	}
	target, err := a.Directory.Get(req.Context(), id)
	if err != nil {
		return deny(err)
	}
	return target, roles, nil
}

// handleRolesDigest tells an administrator the digest to step up for
// before changing an avatar's roles to the ones given.
func (a roleAdmin) handleRolesDigest(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	target, roles, err := a.readRoleChange(w, req, p, "ChangeRoles")
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"avatar": target.ID, "roles": roles, "action_digest": edge.DigestHex(SetRolesDigest(target.ID, roles)),
	})
}

// handleSetRoles replaces an avatar's roles: an administrator's decision,
// confirmed with a passkey step-up bound to exactly this change. The last
// administrator cannot give up the admin role.
func (a roleAdmin) handleSetRoles(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	const action = "ChangeRoles"
	target, roles, err := a.readRoleChange(w, req, p, action)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	resource := AvatarResource(target.ID)
	digest := SetRolesDigest(target.ID, roles)
	// A change refused for a reason known now must not spend the step-up
	// the administrator confirmed it with.
	if err := a.Directory.CheckRoleChange(req.Context(), target.ID, roles); err != nil {
		a.auditDeny(req, p.Avatar.ID, action, resource, err)
		a.edge.WriteError(w, req, err)
		return
	}
	if err := a.StepUps.Consume(req.Context(), p.Session.ID, digest); err != nil {
		a.auditDeny(req, p.Avatar.ID, action, resource, err)
		a.edge.WriteError(w, req, err)
		return
	}
	change, err := a.Directory.ChangeRoles(req.Context(), target.ID, roles)
	if err != nil {
		a.auditDeny(req, p.Avatar.ID, action, resource, err)
		a.edge.WriteError(w, req, err)
		return
	}
	a.AuditNoWait(req.Context(), audit.Event{
		Actor: p.Avatar.ID, Action: action, Resource: resource, Outcome: audit.Allow,
		Reasons: []string{
			"the caller holds the " + a.AdminRole + " role",
			"confirmed with a passkey step-up bound to this change",
		},
		Signals: edge.WithRequestID(req, map[string]any{
			"target_name": target.Name, "before": noStrings(change.Before), "after": noStrings(change.After), "action_digest": edge.DigestHex(digest),
		}),
	})
	target.Roles = change.After
	edge.WriteJSON(w, http.StatusOK, map[string]any{"avatar": avatarSummary(target), "before": noStrings(change.Before)})
}
