package identity

import (
	"encoding/base64"
	"net/http"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

func (a *API) handleMe(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	tr := a.Trust.Assess(req.Context(), p.Session)
	resp := map[string]any{
		"avatar":  AvatarView(p.Avatar),
		"session": SessionView(p.Session),
		"trust":   TrustView(tr),
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
func (a *API) handleDeletePasskey(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	id, err := base64.RawURLEncoding.DecodeString(req.PathValue("id"))
	if err != nil || p.Avatar.Credential(id) == nil {
		a.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no such passkey on this avatar"})
		return
	}
	if err := a.StepUps.Consume(req.Context(), p.Session.ID, DeletePasskeyDigest(id)); err != nil {
		a.auditDeny(req, p.Avatar.ID, "DeletePasskey", CredentialResource(id), err)
		a.edge.WriteError(w, req, err)
		return
	}
	if err := a.Directory.DeleteCredential(req.Context(), p.Avatar.ID, id); err != nil {
		a.auditDeny(req, p.Avatar.ID, "DeletePasskey", CredentialResource(id), err)
		a.edge.WriteError(w, req, err)
		return
	}
	a.auditAllow(req, p.Avatar.ID, "DeletePasskey", CredentialResource(id), "the owner confirmed the deletion with a step-up bound to it", nil)
	w.WriteHeader(http.StatusNoContent)
}
