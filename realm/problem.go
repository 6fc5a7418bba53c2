package realm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/twin"
)

// problem is an RFC 9457 problem details object. Detail is shown to the
// client; internal causes are logged, never sent.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// httpError is an error a handler raises with a status and a message meant
// for the client; Err, when set, is the internal cause for the log.
type httpError struct {
	Status int
	Detail string
	Err    error
	// RetryAfter, when set, is sent as Retry-After (a limit's refusal).
	RetryAfter time.Duration
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *httpError) Unwrap() error { return e.Err }

func badRequest(detail string) error {
	return &httpError{Status: http.StatusBadRequest, Detail: detail}
}

var errNotReady = &httpError{Status: http.StatusServiceUnavailable, Detail: "the realm is starting or stopping; retry shortly"}

// problemFor is the one place that maps an error to an HTTP status and the
// text a client may see.
func problemFor(err error) (status int, detail string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.Status, he.Detail
	case isAssetError(err):
		return assetProblem(err)
	case errors.Is(err, avatar.ErrInvalidInput):
		return http.StatusBadRequest, strings.TrimPrefix(err.Error(), "avatar: ")
	case errors.Is(err, avatar.ErrVerification):
		var pe *protocol.Error
		if errors.As(err, &pe) && pe.Details != "" {
			return http.StatusUnauthorized, "passkey verification failed: " + pe.Details
		}
		return http.StatusUnauthorized, "passkey verification failed"
	case errors.Is(err, avatar.ErrCeremonyNotFound):
		return http.StatusBadRequest, "the ceremony is unknown, already used or expired (ceremonies last 2 minutes and are single-use): begin again"
	case errors.Is(err, avatar.ErrCeremonyMismatch):
		return http.StatusBadRequest, "the ceremony was begun for something else (another kind, avatar or action): begin one for this"
	case errors.Is(err, avatar.ErrClonedCredential):
		return http.StatusForbidden, "this passkey's signature counter went backwards, so it has been copied; it is refused from now on and the avatar's sessions were revoked"
	case errors.Is(err, avatar.ErrNameTaken):
		return http.StatusConflict, "that handle is taken; choose another"
	case errors.Is(err, avatar.ErrLastCredential):
		return http.StatusConflict, "the last passkey cannot be deleted; add another one first"
	case errors.Is(err, avatar.ErrLastAdmin):
		return http.StatusConflict, "this is the realm's last administrator: grant the admin role to another avatar before giving it up"
	case errors.Is(err, avatar.ErrNotFound):
		return http.StatusNotFound, "no such avatar"
	case errors.Is(err, session.ErrRevoked), errors.Is(err, session.ErrExpired):
		var se *session.Error
		if errors.As(err, &se) {
			return http.StatusUnauthorized, fmt.Sprintf("session %s (%s): sign in again", kindWord(se.Kind), se.Reason)
		}
		return http.StatusUnauthorized, "session ended: sign in again"
	case errors.Is(err, session.ErrInvalidSession):
		return http.StatusUnauthorized, "unknown or malformed session token: sign in again"
	case errors.Is(err, session.ErrTooManySessions):
		return http.StatusTooManyRequests, "this avatar has too many sessions; sign out of one (GET /v1/sessions) first"
	case errors.Is(err, twin.ErrInvalidCommand):
		return http.StatusBadRequest, twinDetail(err)
	case errors.Is(err, twin.ErrUnknownTwin):
		return http.StatusNotFound, twinDetail(err)
	case errors.Is(err, twin.ErrEnvelope):
		return http.StatusUnprocessableEntity, twinDetail(err)
	case errors.Is(err, twin.ErrRateLimited):
		return http.StatusTooManyRequests, twinDetail(err)
	case errors.Is(err, twin.ErrNoGateway):
		return http.StatusServiceUnavailable, twinDetail(err)
	case errors.Is(err, twin.ErrInvalidGrant):
		return http.StatusBadGateway, twinDetail(err)
	case errors.Is(err, twin.ErrGatewayRefused):
		return http.StatusConflict, twinDetail(err)
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, "the resource changed concurrently; read it again and retry"
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "the realm's state engine did not answer in time"
	case errors.Is(err, context.Canceled):
		return 499, "request cancelled"
	default:
		return http.StatusInternalServerError, "internal error; the request id identifies it in the realm's log"
	}
}

func kindWord(kind error) string {
	if errors.Is(kind, session.ErrRevoked) {
		return "revoked"
	}
	return "expired"
}

// writeError answers with problem+json and logs server-side failures with
// their internal cause.
func (r *Realm) writeError(w http.ResponseWriter, req *http.Request, err error) {
	status, detail := problemFor(err)
	id := requestIDFrom(req.Context())
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	r.log.Log(req.Context(), level, "request failed", "request_id", id, "method", req.Method, "path", req.URL.Path, "status", status, "err", err)
	p := problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Instance:  req.URL.Path,
		RequestID: id,
	}
	if p.Title == "" {
		p.Title = "Client Closed Request"
	}
	if he := (*httpError)(nil); errors.As(err, &he) && he.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(he.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
