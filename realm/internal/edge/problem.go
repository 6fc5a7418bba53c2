package edge

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

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	idemkeys "github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/internal/store"
)

// Problem is an RFC 9457 problem details object. Detail is shown to the
// client; internal causes are logged, never sent.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Effect, on answers that cannot tell what happened (503s), says
	// whether the request may have changed something: "none" for a read,
	// "unknown" for a write that may have been stored before the answer
	// was lost. An extension member, as RFC 9457 allows.
	Effect string `json:"effect,omitempty"`
}

// Error is an error a handler raises with a status and a message meant
// for the client; Err, when set, is the internal cause for the log.
type Error struct {
	Status int
	Detail string
	Err    error
	// Type, when set, is the problem type's slug (see problemTypes); by
	// default the status picks it.
	Type string
	// RetryAfter, when set, is sent as Retry-After (a limit's refusal).
	RetryAfter time.Duration
	// NothingChanged, on a 503, tells the client that the request had no
	// effect although it failed for want of the store (effect "none").
	NothingChanged bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

func BadRequest(detail string) error {
	return &Error{Status: http.StatusBadRequest, Detail: detail}
}

var ErrNotReady = &Error{Status: http.StatusServiceUnavailable, Type: TypeNotReady, Detail: "the realm is starting or stopping; retry shortly", RetryAfter: time.Second}

// ProblemBase prefixes every problem type URI. The URIs are part of the
// API: clients branch on them, so a type, once published, keeps its name
// and meaning. docs/errors.md describes each one.
const ProblemBase = "https://zerorealm.dev/problems/"

// Problem type slugs, one per cause a client can act on.
const (
	TypeInvalidRequest    = "invalid-request"
	TypeUnauthenticated   = "unauthenticated"
	TypeSessionEnded      = "session-ended"
	TypePasskeyFailed     = "passkey-verification-failed"
	TypeCeremonyExpired   = "ceremony-unknown"
	TypeCeremonyMismatch  = "ceremony-mismatch"
	TypeClonedPasskey     = "cloned-passkey"
	TypeForbidden         = "forbidden"
	TypeNotFound          = "not-found"
	TypeConflict          = "conflict"
	TypeTransferRejected  = "transfer-rejected"
	TypeTooLarge          = "too-large"
	TypeUnsupportedMedia  = "unsupported-media-type"
	TypeOutOfEnvelope     = "out-of-envelope"
	TypeRateLimited       = "rate-limited"
	TypeUnavailable       = "unavailable"
	TypeInsufficientStore = "insufficient-storage"
	TypeNotReady          = "not-ready"
	TypeRequestTimeout    = "request-timeout"
	TypeGatewayAbsent     = "gateway-unavailable"
	TypeGatewayBadGrant   = "gateway-invalid-grant"
	TypeGatewayRefused    = "gateway-refused"
	TypeRequestCancelled  = "request-cancelled"
	TypeInternal          = "internal"
	TypeUnprocessableBody = "unprocessable"
	TypeIdempotencyReused = "idempotency-key-reused"
	TypeIdempotencyBusy   = "idempotency-key-in-progress"
	TypeReceiptPending    = "receipt-pending"
)

// typeForStatus is the problem type of an Error that names none.
func typeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return TypeInvalidRequest
	case http.StatusUnauthorized:
		return TypeUnauthenticated
	case http.StatusForbidden:
		return TypeForbidden
	case http.StatusNotFound:
		return TypeNotFound
	case http.StatusConflict:
		return TypeConflict
	case http.StatusRequestEntityTooLarge:
		return TypeTooLarge
	case http.StatusUnsupportedMediaType:
		return TypeUnsupportedMedia
	case http.StatusUnprocessableEntity:
		return TypeUnprocessableBody
	case http.StatusTooManyRequests:
		return TypeRateLimited
	case http.StatusServiceUnavailable:
		return TypeUnavailable
	default:
		return TypeInternal
	}
}

// UnavailableRetryAfter is what a client is told to wait when the state
// engine cannot answer: a leader election takes a few seconds, a lost
// connection is retried every two.
const UnavailableRetryAfter = 2 * time.Second

// receiptPendingRetryAfter is what a client is told to wait for the
// receipt of an intent applied without one: about one pass of the
// ledger's reconciler, which issues it.
const receiptPendingRetryAfter = 2 * time.Second

// diskRetryAfter is what a client is told to wait when the disk is full:
// freeing space takes an operator, so retrying at once is pointless.
const diskRetryAfter = 10 * time.Second

// answer is how the realm answers an error: the status, the problem type's
// slug, the text a client may see and, for transient causes, how long to
// wait before retrying.
type answer struct {
	status     int
	kind       string
	detail     string
	retryAfter time.Duration
	// nothingChanged: the request is known to have had no effect.
	nothingChanged bool
}

func plainAnswer(status int, kind, detail string, retryAfter time.Duration) answer {
	return answer{status: status, kind: kind, detail: detail, retryAfter: retryAfter}
}

// problemFor is the one place that maps an error to an HTTP status, a
// problem type and the text a client may see. Internal names (streams,
// buckets, subjects) stay in the log: no branch copies a store error's text.
func problemFor(err error) answer {
	var he *Error
	switch {
	case errors.As(err, &he):
		kind := he.Type
		if kind == "" {
			kind = typeForStatus(he.Status)
		}
		return answer{status: he.Status, kind: kind, detail: he.Detail, retryAfter: he.RetryAfter, nothingChanged: he.NothingChanged}
	case errors.Is(err, store.ErrInsufficientStorage):
		// Before ErrUnavailable, which it comes wrapped with.
		return plainAnswer(http.StatusInsufficientStorage, TypeInsufficientStore,
			"the realm's store is refusing writes: its disk is nearly full; reads still work, retry the write after the delay in Retry-After", diskRetryAfter)
	case errors.Is(err, store.ErrUnavailable):
		// Before any domain sentinel: a domain error that wraps an
		// unavailable store is about the store, not the domain.
		return plainAnswer(http.StatusServiceUnavailable, TypeUnavailable,
			"the realm's state engine cannot answer now (connection lost, no leader, or no quorum); retry after the delay in Retry-After", UnavailableRetryAfter)
	case errors.Is(err, idemkeys.ErrKeyReused):
		return plainAnswer(http.StatusUnprocessableEntity, TypeIdempotencyReused, "this Idempotency-Key was used for another request (another intent or command); choose a new key", 0)
	case errors.Is(err, idemkeys.ErrInProgress):
		return plainAnswer(http.StatusConflict, TypeIdempotencyBusy, "the first request with this Idempotency-Key has no answer yet; retry shortly for it", time.Second)
	case errors.Is(err, idemkeys.ErrInvalidKey):
		return plainAnswer(http.StatusBadRequest, TypeInvalidRequest, "Idempotency-Key must be 1 to 255 characters", 0)
	case isProblem(err):
		// A domain's own problem: its status, type and detail as the
		// domain wrote them for a client.
		p, _ := problem.As(err)
		return plainAnswer(p.Status, string(p.Type), p.Detail, p.RetryAfter)
	case errors.Is(err, assets.ErrReceiptPending):
		return plainAnswer(http.StatusConflict, TypeReceiptPending, "the intent was applied, and its receipt is not issued yet (its first answer was lost); send it again after the delay in Retry-After for the receipt, and do not sign it anew", receiptPendingRetryAfter)
	case errors.Is(err, assets.ErrConflict):
		return plainAnswer(http.StatusConflict, TypeConflict, "the asset changed concurrently: read it again and sign a new intent", 0)
	case errors.Is(err, assets.ErrNotCheckpointed):
		return plainAnswer(http.StatusNotFound, TypeNotFound, "the receipt is not in a signed checkpoint yet; retry after the next checkpoint", 0)
	case errors.Is(err, avatar.ErrVerification):
		var pe *protocol.Error
		if errors.As(err, &pe) && pe.Details != "" {
			return plainAnswer(http.StatusUnauthorized, TypePasskeyFailed, "passkey verification failed: "+pe.Details, 0)
		}
		return plainAnswer(http.StatusUnauthorized, TypePasskeyFailed, "passkey verification failed", 0)
	case errors.Is(err, avatar.ErrCeremonyNotFound):
		return plainAnswer(http.StatusBadRequest, TypeCeremonyExpired, "the ceremony is unknown, already used or expired (ceremonies last 2 minutes and are single-use): begin again", 0)
	case errors.Is(err, avatar.ErrCeremonyMismatch):
		return plainAnswer(http.StatusBadRequest, TypeCeremonyMismatch, "the ceremony was begun for something else (another kind, avatar or action): begin one for this", 0)
	case errors.Is(err, avatar.ErrClonedCredential):
		return plainAnswer(http.StatusForbidden, TypeClonedPasskey, "this passkey's signature counter went backwards, so it has been copied; it is refused from now on and the avatar's sessions were revoked", 0)
	case errors.Is(err, avatar.ErrNameTaken):
		return plainAnswer(http.StatusConflict, TypeConflict, "that handle is taken; choose another", 0)
	case errors.Is(err, avatar.ErrLastCredential):
		return plainAnswer(http.StatusConflict, TypeConflict, "the last passkey cannot be deleted; add another one first", 0)
	case errors.Is(err, avatar.ErrLastAdmin):
		return plainAnswer(http.StatusConflict, TypeConflict, "this is the realm's last administrator: grant the admin role to another avatar before giving it up", 0)
	case errors.Is(err, avatar.ErrNotFound):
		return plainAnswer(http.StatusNotFound, TypeNotFound, "no such avatar", 0)
	case errors.Is(err, session.ErrRevoked), errors.Is(err, session.ErrExpired):
		var se *session.Error
		if errors.As(err, &se) {
			return plainAnswer(http.StatusUnauthorized, TypeSessionEnded, fmt.Sprintf("session %s (%s): sign in again", SessionEndWord(se.Kind), se.Reason), 0)
		}
		return plainAnswer(http.StatusUnauthorized, TypeSessionEnded, "session ended: sign in again", 0)
	case errors.Is(err, session.ErrInvalidSession):
		return plainAnswer(http.StatusUnauthorized, TypeUnauthenticated, "unknown or malformed session token: sign in again", 0)
	case errors.Is(err, session.ErrTooManySessions):
		return plainAnswer(http.StatusTooManyRequests, TypeRateLimited, "this avatar has too many sessions; sign out of one (GET /v1/sessions) first", 0)
	case errors.Is(err, store.ErrNotFound):
		return plainAnswer(http.StatusNotFound, TypeNotFound, "not found", 0)
	case errors.Is(err, store.ErrConflict):
		return plainAnswer(http.StatusConflict, TypeConflict, "the resource changed concurrently; read it again and retry", 0)
	case errors.Is(err, store.ErrInvalid):
		return plainAnswer(http.StatusBadRequest, TypeInvalidRequest, "the request names a key or value the realm cannot store (too long, or characters that are not allowed)", 0)
	case errors.Is(err, context.DeadlineExceeded):
		// A deadline that is not the store's own (those are
		// ErrUnavailable): the realm's state did not answer in time.
		return plainAnswer(http.StatusServiceUnavailable, TypeUnavailable, "the realm's state engine did not answer in time; retry after the delay in Retry-After", UnavailableRetryAfter)
	case errors.Is(err, context.Canceled):
		return plainAnswer(499, TypeRequestCancelled, "request cancelled", 0)
	default:
		return plainAnswer(http.StatusInternalServerError, TypeInternal, "internal error; the request id identifies it in the realm's log", 0)
	}
}

// PublicDetail is the text a client is shown for err, as WriteError would
// answer it (an audit record's reason for a refusal uses the same words).
func PublicDetail(err error) string { return problemFor(err).detail }

func isProblem(err error) bool {
	_, ok := problem.As(err)
	return ok
}

// namesInternals reports whether detail names one of the store's streams
// or buckets ("ZR_AUDIT", "KV_ZR_sessions") or a JetStream API subject.
func (e *Edge) namesInternals(detail string) bool {
	resources := strings.ToUpper(e.cfg.ResourcePrefix) + "_"
	return strings.Contains(detail, resources) || strings.Contains(detail, "$JS.") || strings.Contains(detail, "$KV.")
}

// effectOf says whether a request that failed without a verdict may have
// changed something. A safe method changes nothing; anything else may have
// been stored before its answer was lost.
func effectOf(req *http.Request) string {
	if SafeMethod(req.Method) {
		return "none"
	}
	return "unknown"
}

// WriteError answers with problem+json and logs server-side failures with
// their internal cause.
func (e *Edge) WriteError(w http.ResponseWriter, req *http.Request, err error) {
	a := problemFor(err)
	if a.status >= 500 && errors.Is(req.Context().Err(), context.DeadlineExceeded) {
		// Whatever failed last, the request ran out of its time.
		a = answer{status: http.StatusServiceUnavailable, kind: TypeRequestTimeout,
			detail:     fmt.Sprintf("the request did not finish within its %s deadline; retry after the delay in Retry-After", e.cfg.RequestTimeout),
			retryAfter: UnavailableRetryAfter, nothingChanged: a.nothingChanged}
	}
	id := RequestID(req.Context())
	level := slog.LevelInfo
	if a.status >= 500 {
		level = slog.LevelError
	}
	e.log().Log(req.Context(), level, "request failed", "request_id", id, "method", req.Method, "path", req.URL.Path, "status", a.status, "type", a.kind, "err", err)
	if e.namesInternals(a.detail) {
		// A detail built from a wrapped error carried a stream, bucket
		// or API subject: the client gets the type's meaning instead,
		// the log keeps the whole error above.
		a.detail = http.StatusText(a.status) + ": the request id identifies the cause in the realm's log"
	}
	p := Problem{
		Type:      ProblemBase + a.kind,
		Title:     http.StatusText(a.status),
		Status:    a.status,
		Detail:    a.detail,
		Instance:  req.URL.Path,
		RequestID: id,
	}
	if p.Title == "" {
		p.Title = "Client Closed Request"
	}
	if a.kind == TypeUnavailable || a.kind == TypeRequestTimeout || a.kind == TypeInsufficientStore {
		p.Effect = effectOf(req)
		if a.nothingChanged {
			p.Effect = "none"
		}
	}
	if a.status == http.StatusServiceUnavailable && a.retryAfter <= 0 {
		// Every 503 is "not now": say when to come back.
		a.retryAfter = UnavailableRetryAfter
	}
	if a.retryAfter > 0 {
		w.Header().Set("Retry-After", RetryAfterSeconds(a.retryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(p)
}

func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
