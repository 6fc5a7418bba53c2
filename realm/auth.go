package realm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/store"
)

// sessionCookie carries the session token for the web console. HttpOnly
// keeps it from scripts; SameSite=Strict keeps other sites from sending it.
const sessionCookie = "zr_session"

// principal is who a request acts for, after the session checked out.
type principal struct {
	session   session.Session
	avatar    *avatar.Avatar
	viaCookie bool
}

var errNoCredentials = &httpError{Status: http.StatusUnauthorized, Detail: "sign in first: send the session token as Authorization: Bearer, or use the web console's session cookie"}

// sessionToken finds the token: the Authorization header wins, so an API
// client is never confused by a stale cookie.
func sessionToken(req *http.Request) (token string, viaCookie bool, err error) {
	if h := req.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", false, &httpError{Status: http.StatusUnauthorized, Detail: "Authorization must be: Bearer <session token>"}
		}
		return strings.TrimSpace(tok), false, nil
	}
	if c, err := req.Cookie(sessionCookie); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, errNoCredentials
}

// authenticate checks the request's session. A cookie-authenticated request
// that changes state must also carry the session's CSRF token in
// X-CSRF-Token: the cookie is ambient, the header is not.
func (r *Realm) authenticate(req *http.Request) (principal, error) {
	token, viaCookie, err := sessionToken(req)
	if err != nil {
		return principal{}, err
	}
	// Cached for at most a second, evicted by the revocation feed: see
	// session.Manager.AuthenticateCached.
	sess, err := r.sessions.AuthenticateCached(req.Context(), token)
	if serr := (*session.Error)(nil); errors.As(err, &serr) && serr.Reason == session.ReasonRolledBack {
		// The store cannot tell an older genuine record put back; the
		// session layer could, and it is tampering all the same.
		r.reportTamper(store.TamperEvent{Bucket: "sessions", Key: serr.SessionID, Reason: session.ReasonRolledBack})
	}
	if err != nil {
		return principal{}, err
	}
	if viaCookie && !safeMethod(req.Method) && !r.sessions.CheckCSRF(sess, req.Header.Get("X-CSRF-Token")) {
		return principal{}, &httpError{Status: http.StatusForbidden, Detail: "missing or wrong X-CSRF-Token for a cookie session (GET /v1/avatars/me returns it)"}
	}
	// Cached while this node's avatar change feed runs and is caught up;
	// see avatar.Service.GetCached.
	av, err := r.avatars.GetCached(req.Context(), sess.Avatar)
	switch {
	case errors.Is(err, avatar.ErrNotFound):
		return principal{}, &httpError{Status: http.StatusUnauthorized, Detail: "the session's avatar no longer exists", Err: err}
	case err != nil:
		// Not knowing the avatar is not knowing it is gone: the store's
		// failure answers for itself (503 when it is unavailable), so a
		// client is never told to sign in again because of an outage.
		return principal{}, fmt.Errorf("load the session's avatar: %w", err)
	}
	return principal{session: sess, avatar: av, viaCookie: viaCookie}, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authed wraps a handler that needs a signed-in avatar; it also refuses
// cross-origin browser requests before anything else runs.
func (r *Realm) authed(h func(http.ResponseWriter, *http.Request, principal)) http.HandlerFunc {
	return r.whenReady(func(w http.ResponseWriter, req *http.Request) {
		if err := r.checkOrigin(req); err != nil {
			r.writeError(w, req, err)
			return
		}
		p, err := r.authenticate(req)
		if err != nil {
			if isAuthError(err) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="zerorealm"`)
			}
			r.writeError(w, req, err)
			return
		}
		r.trust.observeAddress(req.Context(), p.session, r.clientAddress(req))
		h(w, req, p)
	})
}

// public wraps a handler that anyone may call, with the origin check.
func (r *Realm) public(h http.HandlerFunc) http.HandlerFunc {
	return r.whenReady(func(w http.ResponseWriter, req *http.Request) {
		if err := r.checkOrigin(req); err != nil {
			r.writeError(w, req, err)
			return
		}
		h(w, req)
	})
}

func isAuthError(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.Status == http.StatusUnauthorized
	}
	return errors.Is(err, session.ErrInvalidSession) || errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrRevoked)
}

// setSessionCookie hands the token to the browser for the web console. It is
// Secure whenever the realm is served over https.
func (r *Realm) setSessionCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(time.Until(expires).Seconds()),
		HttpOnly: true,
		Secure:   r.servesHTTPS(),
		SameSite: http.SameSiteStrictMode,
	})
}

func (r *Realm) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.servesHTTPS(), SameSite: http.SameSiteStrictMode})
}

func (r *Realm) servesHTTPS() bool {
	for _, o := range r.origins() {
		if strings.HasPrefix(o, "https://") {
			return true
		}
	}
	return false
}

// sessionContext gives a background task the request's values without its
// cancellation, for work that must finish even if the client goes away
// (revoking sessions after a clone was detected, for one).
func sessionContext(req *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(req.Context()), 10*time.Second)
}
