package realm

import (
	"encoding/base64"
	"net/http"
)

func (r *Realm) handleMe(w http.ResponseWriter, req *http.Request, p principal) {
	a := r.trust.assess(req.Context(), p.session)
	resp := map[string]any{
		"avatar":  avatarView(p.avatar),
		"session": sessionView(p.session),
		"trust":   trustView(a),
	}
	if p.viaCookie {
		// The console's scripts need the CSRF token; an API client with a
		// bearer token has no use for it.
		resp["csrf"] = p.session.CSRF
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleDeletePasskey removes one of the avatar's passkeys after a step-up
// bound to exactly that deletion; the last passkey cannot go, or the avatar
// could never sign in again.
func (r *Realm) handleDeletePasskey(w http.ResponseWriter, req *http.Request, p principal) {
	id, err := base64.RawURLEncoding.DecodeString(req.PathValue("id"))
	if err != nil || p.avatar.Credential(id) == nil {
		r.writeError(w, req, &httpError{Status: http.StatusNotFound, Detail: "no such passkey on this avatar"})
		return
	}
	if err := r.stepups.consume(req.Context(), p.session.ID, deletePasskeyDigest(id)); err != nil {
		r.auditDeny(req, p.avatar.ID, "DeletePasskey", credentialResource(id), err)
		r.writeError(w, req, err)
		return
	}
	if err := r.avatars.DeleteCredential(req.Context(), p.avatar.ID, id); err != nil {
		r.auditDeny(req, p.avatar.ID, "DeletePasskey", credentialResource(id), err)
		r.writeError(w, req, err)
		return
	}
	r.auditAllow(req, p.avatar.ID, "DeletePasskey", credentialResource(id), "the owner confirmed the deletion with a step-up bound to it", nil)
	w.WriteHeader(http.StatusNoContent)
}

func (r *Realm) handleSessions(w http.ResponseWriter, req *http.Request, p principal) {
	list, err := r.sessions.List(req.Context(), p.avatar.ID)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, s := range list {
		v := sessionView(s)
		v["current"] = s.ID == p.session.ID
		v["user_agent"] = s.UserAgent
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// handleLogout and handleLogoutAll may run without the avatar's record
// (see endingSession): they use the session's avatar ID.
func (r *Realm) handleLogout(w http.ResponseWriter, req *http.Request, p principal) {
	out, err := r.revokeOne(req.Context(), p.session, "signed out")
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	r.clearSessionCookie(w)
	view := revokedView(1, out)
	r.auditAllow(req, p.session.Avatar, "SignOut", sessionResource(p.session.ID), "the avatar signed out", view)
	writeJSON(w, http.StatusOK, view)
}

func (r *Realm) handleLogoutAll(w http.ResponseWriter, req *http.Request, p principal) {
	n, out, err := r.revokeAvatar(req.Context(), p.session.Avatar, "signed out everywhere")
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	r.clearSessionCookie(w)
	view := revokedView(n, out)
	r.auditAllow(req, p.session.Avatar, "SignOutEverywhere", "Avatar::"+quote(p.session.Avatar), "the avatar signed out of every session", view)
	writeJSON(w, http.StatusOK, view)
}

func (r *Realm) handleRevokeSession(w http.ResponseWriter, req *http.Request, p principal) {
	id := req.PathValue("id")
	s, err := r.sessions.Get(req.Context(), id)
	if err != nil || s.Avatar != p.avatar.ID {
		// Someone else's session is as good as unknown.
		r.writeError(w, req, &httpError{Status: http.StatusNotFound, Detail: "no such session of yours"})
		return
	}
	if _, err := r.revokeOne(req.Context(), s, "revoked by its avatar"); err != nil {
		r.writeError(w, req, err)
		return
	}
	if id == p.session.ID {
		r.clearSessionCookie(w)
	}
	r.auditAllow(req, p.avatar.ID, "RevokeSession", sessionResource(id), "the avatar revoked one of its sessions", nil)
	w.WriteHeader(http.StatusNoContent)
}

func sessionResource(id string) string { return "Session::" + quote(id) }
