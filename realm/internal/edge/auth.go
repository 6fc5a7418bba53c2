package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
)

// SessionCookie carries the session token for the web console. HttpOnly
// keeps it from scripts; SameSite=Strict keeps other sites from sending it.
const SessionCookie = "zr_session"

// Principal is who a request acts for, after the session checked out.
type Principal struct {
	Session   session.Session
	Avatar    *avatar.Avatar
	ViaCookie bool
	// Agent, when set, is the agent acting (see agents.go): Avatar is
	// then its owner and Session is zero. Only routes wrapped with
	// AuthedOrAgent or AgentAuthed see one.
	Agent *agents.Agent
}

// Sessions checks session tokens (session.Manager).
type Sessions interface {
	AuthenticateCached(ctx context.Context, token string) (session.Session, error)
	CheckCSRF(sess session.Session, token string) bool
}

// Avatars reads the avatar a session belongs to (avatar.Service).
type Avatars interface {
	GetCached(ctx context.Context, avatarID string) (*avatar.Avatar, error)
}

// AuthHooks are told what authentication saw: a session record rolled
// back to before its revocation (tampering with the store), and every
// authenticated request's client address (a trust signal).
type AuthHooks struct {
	RolledBack func(sessionID string)
	Seen       func(ctx context.Context, sess session.Session, address string)
}

type authDeps struct {
	sessions Sessions
	avatars  Avatars
	hooks    AuthHooks
}

// Bind gives the edge what authentication needs. The composition root
// calls it once, during start-up, before the realm reports ready.
func (e *Edge) Bind(sessions Sessions, avatars Avatars, hooks AuthHooks) {
	e.auth = &authDeps{sessions: sessions, avatars: avatars, hooks: hooks}
}

var errNoCredentials = &Error{Status: http.StatusUnauthorized, Detail: "sign in first: send the session token as Authorization: Bearer, or use the web console's session cookie"}

// sessionToken finds the token: the Authorization header wins, so an API
// client is never confused by a stale cookie.
func sessionToken(req *http.Request) (token string, viaCookie bool, err error) {
	if h := req.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", false, &Error{Status: http.StatusUnauthorized, Detail: "Authorization must be: Bearer <session token>"}
		}
		return strings.TrimSpace(tok), false, nil
	}
	if c, err := req.Cookie(SessionCookie); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, errNoCredentials
}

// PresentsCredentials reports whether req carries a session token at all
// (a header or the console's cookie), valid or not.
func PresentsCredentials(req *http.Request) bool {
	_, _, err := sessionToken(req)
	return err == nil
}

// Authenticate checks the request's session. A cookie-authenticated
// request that changes state must also carry the session's CSRF token in
// X-CSRF-Token: the cookie is ambient, the header is not.
func (e *Edge) Authenticate(req *http.Request) (Principal, error) {
	token, viaCookie, err := sessionToken(req)
	if err != nil {
		return Principal{}, err
	}
	// Cached for at most a second, evicted by the revocation feed: see
	// session.Manager.AuthenticateCached.
	sess, err := e.auth.sessions.AuthenticateCached(req.Context(), token)
	if serr := (*session.Error)(nil); errors.As(err, &serr) && serr.Reason == session.ReasonRolledBack && e.auth.hooks.RolledBack != nil {
		// The store cannot tell an older genuine record put back; the
		// session layer could, and it is tampering all the same.
		e.auth.hooks.RolledBack(serr.SessionID)
	}
	if err != nil {
		return Principal{}, err
	}
	if viaCookie && !SafeMethod(req.Method) && !e.auth.sessions.CheckCSRF(sess, req.Header.Get("X-CSRF-Token")) {
		return Principal{}, &Error{Status: http.StatusForbidden, Detail: "missing or wrong X-CSRF-Token for a cookie session (GET /v1/avatars/me returns it)"}
	}
	av, err := e.LoadAvatar(req.Context(), sess)
	if err != nil {
		return Principal{}, err
	}
	return Principal{Session: sess, Avatar: av, ViaCookie: viaCookie}, nil
}

// LoadAvatar reads the avatar of a checked session. Cached while this
// node's avatar change feed runs and is caught up; see
// avatar.Service.GetCached.
func (e *Edge) LoadAvatar(ctx context.Context, sess session.Session) (*avatar.Avatar, error) {
	av, err := e.auth.avatars.GetCached(ctx, sess.Avatar)
	switch {
	case errors.Is(err, avatar.ErrNotFound):
		return nil, &Error{Status: http.StatusUnauthorized, Detail: "the session's avatar no longer exists", Err: err}
	case err != nil:
		// Not knowing the avatar is not knowing it is gone: the store's
		// failure answers for itself (503 when it is unavailable), so a
		// client is never told to sign in again because of an outage.
		return nil, fmt.Errorf("load the session's avatar: %w", err)
	}
	return av, nil
}

// SafeMethod reports whether m changes nothing (RFC 9110 safe methods).
func SafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Authed wraps a handler that needs a signed-in avatar; it also refuses
// cross-origin browser requests before anything else runs.
func (e *Edge) Authed(h func(http.ResponseWriter, *http.Request, Principal)) http.HandlerFunc {
	return e.WhenReady(func(w http.ResponseWriter, req *http.Request) {
		if err := e.CheckOrigin(req); err != nil {
			e.WriteError(w, req, err)
			return
		}
		if presentsDPoP(req) {
			// Fail closed: an agent never reaches a person's route, even
			// one that would otherwise refuse its scheme with a 401.
			e.WriteError(w, req, errPeopleOnly)
			return
		}
		p, err := e.Authenticate(req)
		if err != nil {
			if IsAuthError(err) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="zerorealm"`)
			}
			e.WriteError(w, req, err)
			return
		}
		if seen := e.auth.hooks.Seen; seen != nil {
			seen(req.Context(), p.Session, e.ClientAddress(req))
		}
		h(w, req, p)
	})
}

// Public wraps a handler that anyone may call, with the origin check.
func (e *Edge) Public(h http.HandlerFunc) http.HandlerFunc {
	return e.WhenReady(func(w http.ResponseWriter, req *http.Request) {
		if err := e.CheckOrigin(req); err != nil {
			e.WriteError(w, req, err)
			return
		}
		h(w, req)
	})
}

// IsAuthError reports whether err means the request's credentials do not
// hold (401), as opposed to a failure while checking them.
func IsAuthError(err error) bool {
	var he *Error
	if errors.As(err, &he) {
		return he.Status == http.StatusUnauthorized
	}
	return errors.Is(err, session.ErrInvalidSession) || errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrRevoked)
}

// SetSessionCookie hands the token to the browser for the web console. It
// is Secure whenever the realm is served over https.
func (e *Edge) SetSessionCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    token,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(time.Until(expires).Seconds()),
		HttpOnly: true,
		Secure:   e.servesHTTPS(),
		SameSite: http.SameSiteStrictMode,
	})
}

// ClearSessionCookie tells the browser to forget the session cookie.
func (e *Edge) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: e.servesHTTPS(), SameSite: http.SameSiteStrictMode})
}

func (e *Edge) servesHTTPS() bool {
	for _, o := range e.cfg.Origins() {
		if strings.HasPrefix(o, "https://") {
			return true
		}
	}
	return false
}
