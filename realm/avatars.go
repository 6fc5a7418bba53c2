package realm

import (
	"encoding/base64"
	"net/http"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

func (r *Realm) handleMe(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	a := r.trust.assess(req.Context(), p.Session)
	resp := map[string]any{
		"avatar":  avatarView(p.Avatar),
		"session": sessionView(p.Session),
		"trust":   trustView(a),
	}
	if p.ViaCookie {
		// The console's scripts need the CSRF token; an API client with a
		// bearer token has no use for it.
		resp["csrf"] = p.Session.CSRF
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

// handleDeletePasskey removes one of the avatar's passkeys after a step-up
// bound to exactly that deletion; the last passkey cannot go, or the avatar
// could never sign in again.
func (r *Realm) handleDeletePasskey(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	id, err := base64.RawURLEncoding.DecodeString(req.PathValue("id"))
	if err != nil || p.Avatar.Credential(id) == nil {
		r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no such passkey on this avatar"})
		return
	}
	if err := r.stepups.consume(req.Context(), p.Session.ID, deletePasskeyDigest(id)); err != nil {
		r.auditDeny(req, p.Avatar.ID, "DeletePasskey", credentialResource(id), err)
		r.edge.WriteError(w, req, err)
		return
	}
	if err := r.avatars.DeleteCredential(req.Context(), p.Avatar.ID, id); err != nil {
		r.auditDeny(req, p.Avatar.ID, "DeletePasskey", credentialResource(id), err)
		r.edge.WriteError(w, req, err)
		return
	}
	r.auditAllow(req, p.Avatar.ID, "DeletePasskey", credentialResource(id), "the owner confirmed the deletion with a step-up bound to it", nil)
	w.WriteHeader(http.StatusNoContent)
}

func (r *Realm) handleSessions(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	list, err := r.sessions.List(req.Context(), p.Avatar.ID)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, s := range list {
		v := sessionView(s)
		v["current"] = s.ID == p.Session.ID
		v["user_agent"] = s.UserAgent
		out = append(out, v)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (r *Realm) handleLogout(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	if err := r.sessions.Revoke(req.Context(), p.Session.ID, "signed out"); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	r.edge.ClearSessionCookie(w)
	r.auditAllow(req, p.Avatar.ID, "SignOut", sessionResource(p.Session.ID), "the avatar signed out", nil)
	edge.WriteJSON(w, http.StatusOK, map[string]any{"revoked": 1})
}

func (r *Realm) handleLogoutAll(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	n, err := r.sessions.RevokeAvatar(req.Context(), p.Avatar.ID, "signed out everywhere")
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	r.edge.ClearSessionCookie(w)
	r.auditAllow(req, p.Avatar.ID, "SignOutEverywhere", "Avatar::"+quote(p.Avatar.ID), "the avatar signed out of every session", map[string]any{"revoked": n})
	edge.WriteJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

func (r *Realm) handleRevokeSession(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	id := req.PathValue("id")
	s, err := r.sessions.Get(req.Context(), id)
	if err != nil || s.Avatar != p.Avatar.ID {
		// Someone else's session is as good as unknown.
		r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no such session of yours"})
		return
	}
	if err := r.sessions.Revoke(req.Context(), id, "revoked by its avatar"); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if id == p.Session.ID {
		r.edge.ClearSessionCookie(w)
	}
	r.auditAllow(req, p.Avatar.ID, "RevokeSession", sessionResource(id), "the avatar revoked one of its sessions", nil)
	w.WriteHeader(http.StatusNoContent)
}

func sessionResource(id string) string { return "Session::" + quote(id) }
