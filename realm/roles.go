package realm

import (
	"context"
	"crypto/sha256"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Who administers the realm: the bootstrap that makes the first avatar of
// a realm without an administrator into one, and the role API with which
// administrators grant and take roles.

// avatarConfig configures the avatar service: passkeys bound to the
// realm's relying party and origins, the admin role, and the bootstrap.
func (r *Realm) avatarConfig() avatar.Config {
	cfg := avatar.Config{RPID: r.cfg.RPID, Origins: r.origins(), AdminRole: r.cfg.AdminRole, CeremonyTTL: ceremonyTTL, Logger: r.log}
	if r.cfg.DisableBootstrapAdmin {
		r.log.Info("bootstrap administrator disabled: no registration is promoted", "admin_role", r.cfg.AdminRole)
		return cfg
	}
	if _, err := os.Stat(r.bootstrappedFile()); err == nil {
		// The bootstrap key lives in NATS, where whoever can write may
		// delete it; this node saw an administrator made and never makes
		// another.
		r.log.Info("bootstrap administrator already made on this realm: no registration is promoted", "marker", r.bootstrappedFile())
		return cfg
	}
	cfg.BootstrapRoles = r.cfg.BootstrapAdminRoles
	cfg.OnBootstrap = r.auditBootstrap
	return cfg
}

// auditBootstrap records the promotion the avatar service decided. It
// runs inside the registration's request, whose id goes with it.
func (r *Realm) auditBootstrap(ctx context.Context, a *avatar.Avatar) {
	r.markBootstrapped()
	r.log.Warn("the first avatar registered on this realm is its administrator", "avatar", a.ID, "name", a.Name, "roles", a.Roles)
	r.auditAsync(ctx, audit.Event{
		Actor: "realm:" + r.cfg.Node, Action: "BootstrapAdmin", Resource: avatarResource(a.ID), Outcome: audit.Allow,
		Reasons: []string{
			"first avatar registered on a realm without an administrator (bootstrap on)",
			"its registration created the bootstrap key; every other registration, on any node, finds it taken",
		},
		Signals: map[string]any{"name": a.Name, "roles": a.Roles, "request_id": edge.RequestID(ctx)},
	})
}

// bootstrappedFile, in the data dir, says this node has seen the
// bootstrap administrator made.
func (r *Realm) bootstrappedFile() string { return filepath.Join(r.cfg.DataDir, bootstrappedFile) }

const bootstrappedFile = "bootstrapped"

// markBootstrapped records, outside NATS, that the bootstrap is done.
func (r *Realm) markBootstrapped() {
	if err := os.WriteFile(r.bootstrappedFile(), []byte("the bootstrap administrator of this realm has been made\n"), 0o600); err != nil {
		r.log.Warn("cannot record that the bootstrap is done; a deletion of its key in NATS could promote another avatar", "file", r.bootstrappedFile(), "err", err)
	}
}

// noteBootstrapped records the marker when the store says the bootstrap
// is done, so that a later start does not rely on NATS for it.
func (r *Realm) noteBootstrapped(ctx context.Context) {
	if r.cfg.DisableBootstrapAdmin {
		return
	}
	if id, err := r.avatars.Bootstrapped(ctx); err == nil && id != "" {
		r.markBootstrapped()
	}
}

func (r *Realm) roleRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/avatars", r.edge.Authed(r.handleListAvatars))
	mux.HandleFunc("POST /v1/avatars/{id}/roles/digest", r.edge.Authed(r.handleRolesDigest))
	mux.HandleFunc("PUT /v1/avatars/{id}/roles", r.edge.Authed(r.handleSetRoles))
}

const (
	defaultAvatarPage = 50
	maxAvatarPage     = 500
)

// requireAdmin refuses, and audits the refusal of, a caller without the
// admin role.
func (r *Realm) requireAdmin(req *http.Request, p edge.Principal, action, resource string) error {
	if slices.Contains(p.Avatar.Roles, r.cfg.AdminRole) {
		return nil
	}
	err := &edge.Error{Status: http.StatusForbidden, Detail: "this needs the " + r.cfg.AdminRole + " role, which this avatar does not hold"}
	r.auditDeny(req, p.Avatar.ID, action, resource, err)
	return err
}

// handleListAvatars pages through the realm's avatars by name, for an
// administrator.
func (r *Realm) handleListAvatars(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	const action, resource = "ListAvatars", "Avatars"
	if err := r.requireAdmin(req, p, action, resource); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	q := req.URL.Query()
	limit := defaultAvatarPage
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAvatarPage {
			r.edge.WriteError(w, req, edge.BadRequest("limit must be a whole number from 1 to "+strconv.Itoa(maxAvatarPage)))
			return
		}
		limit = n
	}
	list, next, err := r.avatars.List(req.Context(), q.Get("after"), limit)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, a := range list {
		out = append(out, avatarSummary(a))
	}
	r.auditAllow(req, p.Avatar.ID, action, resource, "the caller holds the "+r.cfg.AdminRole+" role",
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
func (r *Realm) readRoleChange(w http.ResponseWriter, req *http.Request, p edge.Principal, action string) (*avatar.Avatar, []string, error) {
	id := req.PathValue("id")
	resource := avatarResource(id)
	if err := r.requireAdmin(req, p, action, resource); err != nil {
		return nil, nil, err
	}
	deny := func(err error) (*avatar.Avatar, []string, error) {
		r.auditDeny(req, p.Avatar.ID, action, resource, err)
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
	target, err := r.avatars.Get(req.Context(), id)
	if err != nil {
		return deny(err)
	}
	return target, roles, nil
}

// handleRolesDigest tells an administrator the digest to step up for
// before changing an avatar's roles to the ones given.
func (r *Realm) handleRolesDigest(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	target, roles, err := r.readRoleChange(w, req, p, "ChangeRoles")
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"avatar": target.ID, "roles": roles, "action_digest": digestHex(setRolesDigest(target.ID, roles)),
	})
}

// handleSetRoles replaces an avatar's roles: an administrator's decision,
// confirmed with a passkey step-up bound to exactly this change. The last
// administrator cannot give up the admin role.
func (r *Realm) handleSetRoles(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	const action = "ChangeRoles"
	target, roles, err := r.readRoleChange(w, req, p, action)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	resource := avatarResource(target.ID)
	digest := setRolesDigest(target.ID, roles)
	// A change refused for a reason known now must not spend the step-up
	// the administrator confirmed it with.
	if err := r.avatars.CheckRoleChange(req.Context(), target.ID, roles); err != nil {
		r.auditDeny(req, p.Avatar.ID, action, resource, err)
		r.edge.WriteError(w, req, err)
		return
	}
	if err := r.stepups.consume(req.Context(), p.Session.ID, digest); err != nil {
		r.auditDeny(req, p.Avatar.ID, action, resource, err)
		r.edge.WriteError(w, req, err)
		return
	}
	change, err := r.avatars.ChangeRoles(req.Context(), target.ID, roles)
	if err != nil {
		r.auditDeny(req, p.Avatar.ID, action, resource, err)
		r.edge.WriteError(w, req, err)
		return
	}
	r.auditAsync(req.Context(), audit.Event{
		Actor: p.Avatar.ID, Action: action, Resource: resource, Outcome: audit.Allow,
		Reasons: []string{
			"the caller holds the " + r.cfg.AdminRole + " role",
			"confirmed with a passkey step-up bound to this change",
		},
		Signals: withRequestID(req, map[string]any{
			"target_name": target.Name, "before": nonNil(change.Before), "after": nonNil(change.After), "action_digest": digestHex(digest),
		}),
	})
	target.Roles = change.After
	edge.WriteJSON(w, http.StatusOK, map[string]any{"avatar": avatarSummary(target), "before": nonNil(change.Before)})
}

// avatarSummary is what an administrator sees of an avatar: no passkeys.
func avatarSummary(a *avatar.Avatar) map[string]any {
	return map[string]any{"id": a.ID, "name": a.Name, "display_name": a.DisplayName, "roles": nonNil(a.Roles), "created": a.Created}
}

func avatarResource(id string) string { return "Avatar::" + quote(id) }

// setRolesDigest is the action a step-up must be bound to before an
// avatar's roles become roles (normalized, in order):
// SHA-256("zerorealm/set-roles/v1" || 0x00 || avatar id || (0x00 || role)...).
// No role contains 0x00, so the encoding is unambiguous.
func setRolesDigest(avatarID string, roles []string) []byte {
	h := sha256.New()
	h.Write([]byte("zerorealm/set-roles/v1"))
	h.Write([]byte{0})
	h.Write([]byte(avatarID))
	for _, role := range roles {
		h.Write([]byte{0})
		h.Write([]byte(role))
	}
	return h.Sum(nil)
}
