package edge

import (
	"context"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
)

// Ways EndingSession authenticates.
const (
	// RecallFirst: a session this node remembers is ended without asking
	// the store, which may not answer before the request's deadline while
	// it elects a leader. Fit for ending the request's own session only:
	// the token is proven, and ending a session that was already over
	// changes nothing.
	RecallFirst = true
	// StoreFirst: as Authed, with the node's memory only when the store
	// fails. For ending other sessions too, which a token revoked a
	// moment ago elsewhere must not do while the store answers.
	StoreFirst = false
)

// recaller remembers sessions this node authenticated
// (session.Manager.Recall).
type recaller interface {
	Recall(token string) (session.Session, bool)
}

// EndingSession wraps a handler that ends the request's session or the
// avatar's sessions. It authenticates like Authed, except that a session
// this node authenticated before may be recalled from memory
// (session.Manager.Recall): the token is still proven, and a sign-out
// must work precisely when the store does not. The principal's Avatar is
// then nil; such handlers use the session's avatar ID.
func (e *Edge) EndingSession(recall bool, h func(http.ResponseWriter, *http.Request, Principal)) http.HandlerFunc {
	return e.WhenReady(func(w http.ResponseWriter, req *http.Request) {
		if err := e.CheckOrigin(req); err != nil {
			e.WriteError(w, req, err)
			return
		}
		if presentsDPoP(req) {
			e.WriteError(w, req, errPeopleOnly) // as Authed: sessions are people's
			return
		}
		if recall {
			if p, ok := e.recallSession(req); ok {
				h(w, req, p)
				return
			}
		}
		p, err := e.authenticateWithin(req, storeFirstShare)
		if err != nil && !IsAuthError(err) {
			if recalled, ok := e.recallSession(req); ok {
				e.log().Warn("sign-out authenticated from this node's memory: the store cannot be read", "session", recalled.Session.ID, "err", err)
				p, err = recalled, nil
			}
		}
		if err != nil {
			if IsAuthError(err) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="zerorealm"`)
			}
			e.WriteError(w, req, err)
			return
		}
		h(w, req, p)
	})
}

// storeFirstShare is the share of a request's remaining budget that
// StoreFirst gives the store to authenticate the session: a store that
// does not answer in it (its bucket electing a leader) leaves the rest
// for telling every node and for the first store attempt.
const storeFirstShare = 3

// authenticateWithin is Authenticate, within 1/share of what is left of
// the request's deadline.
func (e *Edge) authenticateWithin(req *http.Request, share int) (Principal, error) {
	ctx, cancel := WithinShare(req.Context(), share)
	defer cancel()
	return e.Authenticate(req.WithContext(ctx))
}

// WithinShare is ctx ending after 1/share of what is left of its deadline
// (ctx itself when it has none): for a step that must leave the rest of
// the request's budget to the steps after it, when it cannot finish.
func WithinShare(ctx context.Context, share int) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok || share <= 1 {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, time.Now().Add(time.Until(d)/time.Duration(share)))
}

// recallSession is the request's session as this node remembers it, with
// the cookie's CSRF check.
func (e *Edge) recallSession(req *http.Request) (Principal, bool) {
	r, ok := e.auth.sessions.(recaller)
	if !ok {
		return Principal{}, false
	}
	token, viaCookie, err := sessionToken(req)
	if err != nil {
		return Principal{}, false
	}
	sess, ok := r.Recall(token)
	if !ok || (viaCookie && !SafeMethod(req.Method) && !e.auth.sessions.CheckCSRF(sess, req.Header.Get("X-CSRF-Token"))) {
		return Principal{}, false
	}
	return Principal{Session: sess, ViaCookie: viaCookie}, true
}
