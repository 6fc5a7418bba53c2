package realm

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type ctxKey int

const requestIDKey ctxKey = iota

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func (r *Realm) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", r.handleHealth)
	mux.HandleFunc("GET /livez", r.handleLivez)
	mux.HandleFunc("GET /readyz", r.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.registry, promhttp.HandlerOpts{Registry: r.metrics.registry}))
	mux.HandleFunc("GET /v1/version", r.handleVersion)
	mux.HandleFunc("GET /v1/scenes", r.whenReady(r.handleScenes))
	mux.HandleFunc("GET /v1/scenes/{id}", r.whenReady(r.handleScene))
	mux.HandleFunc("GET /v1/scenes/{id}/access", r.authed(r.handleSceneAccess))
	mux.HandleFunc("GET /v1/scenes/{id}/me", r.authed(r.handleSceneStanding))
	mux.HandleFunc("GET /v1/nodes", r.whenReady(r.handleNodes))
	mux.HandleFunc("GET /v1/audit", r.authed(r.handleAudit))
	mux.HandleFunc("GET /v1/audit/verify", r.whenReady(r.handleAuditVerify))
	mux.HandleFunc("GET /v1/audit/checkpoints", r.whenReady(r.handleAuditCheckpoints))
	mux.HandleFunc("GET /v1/audit/proof/inclusion", r.whenReady(r.handleAuditInclusion))
	mux.HandleFunc("GET /v1/audit/proof/consistency", r.whenReady(r.handleAuditConsistency))
	// The console: every embedded file, for GET; a GET of any other path
	// is answered by it as an unknown route.
	mux.Handle("GET /", r.webHandler())
	mux.HandleFunc("POST /v1/webauthn/register/begin", r.public(r.handleRegisterBegin))
	mux.HandleFunc("POST /v1/webauthn/register/finish", r.public(r.handleRegisterFinish))
	mux.HandleFunc("POST /v1/webauthn/login/begin", r.public(r.handleLoginBegin))
	mux.HandleFunc("POST /v1/webauthn/login/finish", r.public(r.handleLoginFinish))
	mux.HandleFunc("POST /v1/webauthn/stepup/begin", r.authed(r.handleStepUpBegin))
	mux.HandleFunc("POST /v1/webauthn/stepup/finish", r.authed(r.handleStepUpFinish))
	mux.HandleFunc("GET /v1/avatars/me", r.authed(r.handleMe))
	mux.HandleFunc("DELETE /v1/avatars/me/passkeys/{id}", r.authed(r.handleDeletePasskey))
	mux.HandleFunc("GET /v1/sessions", r.authed(r.handleSessions))
	mux.HandleFunc("POST /v1/sessions/logout", r.endingSession(recallFirst, r.handleLogout))
	mux.HandleFunc("POST /v1/sessions/logout-all", r.endingSession(storeFirst, r.handleLogoutAll))
	mux.HandleFunc("DELETE /v1/sessions/{id}", r.authed(r.handleRevokeSession))
	mux.HandleFunc("GET /v1/realm", r.authed(r.handleLive))
	mux.HandleFunc("GET /v1/avatars/me/template", r.authed(r.handleTemplate))
	mux.HandleFunc("DELETE /v1/avatars/me/template", r.authed(r.handleDeleteTemplate))
	mux.HandleFunc("GET /v1/twins", r.authed(r.handleTwins))
	mux.HandleFunc("GET /v1/twins/feed", r.authed(r.handleTwinFeed))
	mux.HandleFunc("GET /v1/twins/{twin}", r.authed(r.handleTwin))
	mux.HandleFunc("POST /v1/twins/{twin}/actuators/{actuator}/commands", r.authed(r.handleTwinCommand))
	mux.HandleFunc("POST /v1/twins/{twin}/actuators/{actuator}/commands/digest", r.authed(r.handleCommandDigest))
	mux.HandleFunc("GET /v1/approvals", r.authed(r.handleApprovals))
	mux.HandleFunc("GET /v1/approvals/{id}", r.authed(r.handleApproval))
	mux.HandleFunc("POST /v1/approvals/{id}/approve", r.authed(r.handleApprove))
	mux.HandleFunc("POST /v1/approvals/{id}/reject", r.authed(r.handleReject))
	r.assetRoutes(mux)
	r.roleRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		r.writeError(w, req, &httpError{Status: http.StatusNotFound, Detail: fmt.Sprintf("no route for %s %s", req.Method, req.URL.Path)})
	})
	return r.instrument(mux)
}

// instrument adds the request id, access log, metrics and panic recovery
// around every request.
func (r *Realm) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		id := req.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		req = req.WithContext(context.WithValue(req.Context(), requestIDKey, id))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				r.edgeLog().Error("handler panic", "request_id", id, "panic", p)
				if !rec.wrote {
					r.writeError(rec, req, fmt.Errorf("panic: %v", p))
				}
			}
			route := req.Pattern
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			r.metrics.requests.WithLabelValues(route, req.Method, strconv.Itoa(rec.status)).Inc()
			r.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
			// Checked first: the call's arguments escape and allocate even
			// when debug logging is off, on every request.
			if log := r.edgeLog(); log.Enabled(req.Context(), slog.LevelDebug) {
				log.Debug("http", "request_id", id, "method", req.Method, "path", req.URL.Path, "status", rec.status, "duration", elapsed)
			}
		}()
		next.ServeHTTP(rec, req)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack lets the WebSocket upgrade take the connection over; the status is
// recorded as 101 Switching Protocols.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("the response writer cannot be hijacked")
	}
	s.status, s.wrote = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

// whenReady answers 503 until start-up has finished, so handlers can use
// the store, scenes and audit log without checking. It also gives the
// request its deadline (see withRequestDeadline).
func (r *Realm) whenReady(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if !r.ready.Load() {
			r.writeError(w, req, errNotReady)
			return
		}
		req, cancel := r.withRequestDeadline(req)
		defer cancel()
		h(w, req)
	}
}

// defaultRequestTimeout is Config.RequestTimeout's default: well under
// what a person waits for before retrying, and longer than a JetStream
// leader election, which a request should ride out rather than fail.
const defaultRequestTimeout = 3 * time.Second

// withRequestDeadline gives req the request timeout as its deadline. Every
// store call under it takes its deadline from the context, so the calls
// share the one budget instead of each taking the store's own timeout. A
// WebSocket upgrade gets none: its context lives as long as the socket.
func (r *Realm) withRequestDeadline(req *http.Request) (*http.Request, context.CancelFunc) {
	if r.cfg.RequestTimeout <= 0 || websocket.IsWebSocketUpgrade(req) {
		return req, func() {}
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.RequestTimeout)
	return req.WithContext(ctx), cancel
}

// detachKeepingDeadline is ctx without its cancellation (a client that
// hangs up does not abandon the work) but with its deadline, so work that
// must finish still finishes within the request's budget.
func detachKeepingDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, d)
	}
	return detached, func() {}
}
