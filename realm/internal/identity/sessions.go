package identity

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/useragent"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// startSession issues the session after a verified passkey, records the
// passkey as trust evidence, and answers with the session.
func (a *API) startSession(w http.ResponseWriter, req *http.Request, av *avatar.Avatar, cred *avatar.Credential, useCookie bool, at time.Time) {
	token, sess, err := a.Sessions.Create(req.Context(), av.ID, session.Meta{
		Credential: base64.RawURLEncoding.EncodeToString(cred.ID),
		Node:       a.Node,
		UserAgent:  req.UserAgent(),
	})
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if _, err := a.Trust.ObservePasskey(req.Context(), sess, passkeyEvidence(cred, true, at)); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	concurrent := 1
	if list, err := a.Sessions.List(req.Context(), av.ID); err == nil {
		var live []sessionAge
		now := a.Now()
		for _, s := range list {
			if !s.Revoked && now.Before(s.Expires) {
				live = append(live, sessionAge{id: s.ID, created: s.Created, expires: s.Expires})
			}
		}
		concurrent = len(live)
		if limit := a.Limits.MaxSessionsPerAvatar; limit > 0 {
			a.limitSessions(req, av.ID, sess.ID, live)
			concurrent = min(concurrent, limit)
		}
	}
	a.Trust.ObserveSignIn(req.Context(), sess, a.edge.ClientAddress(req), max(concurrent, 1))
	tr := a.Trust.Assess(req.Context(), sess)
	resp := map[string]any{
		"avatar":  AvatarView(av),
		"session": SessionView(sess),
		"trust":   TrustView(tr),
	}
	if useCookie {
		a.edge.SetSessionCookie(w, token, sess.Expires)
		resp["csrf"] = sess.CSRF
	} else {
		resp["token"] = token
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

// limitSessions revokes the avatar's oldest live sessions beyond
// MaxSessionsPerAvatar, keeping keep (the one just issued). A new sign-in
// always succeeds for whoever holds a passkey; the sessions an avatar
// holds, each a bearer credential, stay bounded.
func (a *API) limitSessions(req *http.Request, avatarID, keep string, live []sessionAge) {
	over := len(live) - a.Limits.MaxSessionsPerAvatar
	if over <= 0 {
		return
	}
	ctx, cancel := edge.DetachForCleanup(req)
	defer cancel()
	for _, s := range oldestFirst(live, keep)[:over] {
		reason := "session limit: the avatar signed in again with " + strconv.Itoa(a.Limits.MaxSessionsPerAvatar) + " sessions open; the oldest ends"
		if _, err := a.revokeOne(ctx, session.Session{ID: s.id, Avatar: avatarID, Expires: s.expires}, reason); err != nil {
			a.Log.Warn("revoke a session over the avatar's limit", "avatar", avatarID, "session", s.id, "err", err)
			continue
		}
		a.auditAllow(req, avatarID, "RevokeSession", SessionResource(s.id), reason, nil)
	}
}

type sessionAge struct {
	id               string
	created, expires time.Time
}

// oldestFirst is live without keep, the oldest first.
func oldestFirst(live []sessionAge, keep string) []sessionAge {
	out := make([]sessionAge, 0, len(live))
	for _, s := range live {
		if s.id != keep {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sessionAge) int { return a.created.Compare(b.created) })
	return out
}

func (a *API) handleSessions(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	list, err := a.Sessions.List(req.Context(), p.Avatar.ID)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, s := range list {
		v := SessionView(s)
		v["current"] = s.ID == p.Session.ID
		v["user_agent"] = s.UserAgent
		client := useragent.Parse(s.UserAgent)
		v["browser"], v["os"] = client.Browser, client.OS
		out = append(out, v)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// handleLogout and handleLogoutAll may run without the avatar's record
// (see edge.EndingSession): they use the session's avatar ID.
func (a *API) handleLogout(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	out, err := a.revokeOne(req.Context(), p.Session, "signed out")
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	a.edge.ClearSessionCookie(w)
	view := revokedView(1, out)
	a.auditAllow(req, p.Session.Avatar, "SignOut", SessionResource(p.Session.ID), "the avatar signed out", view)
	edge.WriteJSON(w, http.StatusOK, view)
}

// handleLogoutAll ends the avatar's sessions first, on every node and
// without reading the store for them (see revokeAvatar), then its agents
// (on every live node at once, their store following: the answer's
// agents_stopped says whether they were stopped).
func (a *API) handleLogoutAll(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	n, out, err := a.revokeAvatar(req.Context(), p.Session.Avatar, "signed out everywhere")
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	a.edge.ClearSessionCookie(w)
	view := revokedView(n, out)
	if stop := a.SignedOutEverywhere; stop != nil {
		// Half of what is left: the audit record of the sign-out needs
		// the rest when the agents' store does not answer.
		ctx, cancel := edge.WithinShare(req.Context(), 2)
		view["agents_stopped"] = stop(ctx, p.Session.Avatar)
		cancel()
	}
	a.auditAllow(req, p.Session.Avatar, "SignOutEverywhere", AvatarResource(p.Session.Avatar), "the avatar signed out of every session", view)
	edge.WriteJSON(w, http.StatusOK, view)
}

// handleRevokeSession ends one of the avatar's sessions everywhere. The
// session's record says whose it is; while the store cannot be read, the
// caller's own session, or the copy this node last read, says it. It may
// run without the avatar's record (see edge.EndingSession): it uses the
// session's avatar ID.
func (a *API) handleRevokeSession(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	id := req.PathValue("id")
	// Half of what is left for the read: a store that cannot answer
	// leaves the other half to tell every node.
	readCtx, cancel := edge.WithinShare(req.Context(), 2)
	s, err := a.Sessions.Get(readCtx, id)
	cancel()
	if err != nil && !errors.Is(err, session.ErrInvalidSession) {
		known, ok := a.Sessions.Remembered(id)
		if id == p.Session.ID {
			known, ok = p.Session, true
		}
		if !ok {
			a.edge.WriteError(w, req, err)
			return
		}
		s, err = known, nil
	}
	if err != nil || s.Avatar != p.Session.Avatar {
		// Someone else's session is as good as unknown.
		a.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no such session of yours"})
		return
	}
	if _, err := a.revokeOne(req.Context(), s, "revoked by its avatar"); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if id == p.Session.ID {
		a.edge.ClearSessionCookie(w)
	}
	a.auditAllow(req, p.Session.Avatar, "RevokeSession", SessionResource(id), "the avatar revoked one of its sessions", nil)
	w.WriteHeader(http.StatusNoContent)
}
