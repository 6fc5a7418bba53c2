package edge

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerorealm/zerorealm/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Config is what the edge needs to know of the realm's configuration.
type Config struct {
	// Origins lists the browser origins allowed to call the API; it is a
	// function because the default (the realm's own URL) is known only
	// once the listener is bound.
	Origins func() []string
	// RequestTimeout is every request's deadline; 0 turns it off.
	RequestTimeout time.Duration
	// ResourcePrefix names the realm's streams and buckets ("ZR"), so a
	// detail that would reveal one to a client is replaced.
	ResourcePrefix string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Tracer, when set, records every request as a server span, a child
	// of the caller's when it sends a W3C traceparent.
	Tracer trace.Tracer
}

// Edge is one realm node's HTTP edge. The realm creates it before it
// listens (a load balancer polls health during start-up), and binds what
// authentication needs (Bind) before it reports ready.
type Edge struct {
	cfg    Config
	logger atomic.Pointer[slog.Logger]
	ready  func() bool

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// auth is bound once by the composition root before ready turns
	// true; handlers read it only behind WhenReady, whose atomic ready
	// check orders the write before every read.
	auth *authDeps
	// agents is bound the same way (BindAgents); nil refuses agents.
	agents *agentDeps
}

// New returns an edge that logs to log, answers 503 until ready reports
// true, and registers its request metrics with reg.
func New(cfg Config, log *slog.Logger, ready func() bool, reg prometheus.Registerer) *Edge {
	if cfg.Origins == nil {
		cfg.Origins = func() []string { return nil }
	}
	e := &Edge{
		cfg:   cfg,
		ready: ready,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zerorealm_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"route"}),
	}
	e.logger.Store(log)
	reg.MustRegister(e.requests, e.duration)
	return e
}

// SetLogger replaces the edge's logger: start-up names the node, and the
// edge logs with that name from then on, while requests may already run.
func (e *Edge) SetLogger(log *slog.Logger) { e.logger.Store(log) }

func (e *Edge) log() *slog.Logger { return e.logger.Load() }

// RequestTimeout is the deadline every request gets (0: none).
func (e *Edge) RequestTimeout() time.Duration { return e.cfg.RequestTimeout }

type ctxKey int

const requestIDKey ctxKey = iota

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestID is the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Instrument adds the request id, access log, metrics and panic recovery
// around every request.
func (e *Edge) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		id := req.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(req.Context(), requestIDKey, id)
		var span trace.Span
		if e.cfg.Tracer != nil {
			ctx, span = e.cfg.Tracer.Start(tracing.ExtractHTTP(ctx, req.Header), req.Method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("zerorealm.request_id", id)))
		}
		req = req.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				e.log().Error("handler panic", "request_id", id, "panic", p)
				if !rec.wrote {
					e.WriteError(rec, req, fmt.Errorf("panic: %v", p))
				}
			}
			route := req.Pattern
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			e.requests.WithLabelValues(route, req.Method, strconv.Itoa(rec.status)).Inc()
			e.duration.WithLabelValues(route).Observe(elapsed.Seconds())
			if span != nil {
				// A route pattern names its method ("POST /v1/..."); the
				// span is named for it, as OpenTelemetry's HTTP
				// conventions ask.
				name := route
				if !strings.Contains(route, " ") {
					name = req.Method + " " + route
				}
				span.SetName(name)
				span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", rec.status))
				if rec.status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(rec.status))
				}
				span.End()
			}
			// The access log: one line per request. Checked first: the
			// call's arguments escape and allocate even when the level
			// is off.
			if log := e.log(); log.Enabled(req.Context(), slog.LevelInfo) {
				attrs := []any{"request_id", id, "method", req.Method, "route", route, "path", req.URL.Path, "status", rec.status, "duration", elapsed, "client", e.ClientAddress(req)}
				if sc := trace.SpanContextFromContext(req.Context()); sc.HasTraceID() {
					attrs = append(attrs, "trace_id", sc.TraceID().String())
				}
				log.Info("http", attrs...)
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

// WhenReady answers 503 until start-up has finished, so handlers can use
// the store, scenes and audit log without checking. It also gives the
// request its deadline (see withRequestDeadline).
func (e *Edge) WhenReady(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if !e.ready() {
			e.WriteError(w, req, ErrNotReady)
			return
		}
		req, cancel := e.withRequestDeadline(req)
		defer cancel()
		h(w, req)
	}
}

// DefaultRequestTimeout is the request timeout's default: well under
// what a person waits for before retrying, and longer than a JetStream
// leader election, which a request should ride out rather than fail.
const DefaultRequestTimeout = 3 * time.Second

// withRequestDeadline gives req the request timeout as its deadline. Every
// store call under it takes its deadline from the context, so the calls
// share the one budget instead of each taking the store's own timeout. A
// WebSocket upgrade gets none: its context lives as long as the socket.
func (e *Edge) withRequestDeadline(req *http.Request) (*http.Request, context.CancelFunc) {
	if e.cfg.RequestTimeout <= 0 || websocket.IsWebSocketUpgrade(req) {
		return req, func() {}
	}
	ctx, cancel := context.WithTimeout(req.Context(), e.cfg.RequestTimeout)
	return req.WithContext(ctx), cancel
}

// DetachKeepingDeadline is ctx without its cancellation (a client that
// hangs up does not abandon the work) but with its deadline, so work that
// must finish still finishes within the request's budget.
func DetachKeepingDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, d)
	}
	return detached, func() {}
}

// Cleanup is store.Cleanup for the parts that do not use the store
// themselves: ctx for the clean-up after a request's work, not cancelled
// with the request and ending shortly after its deadline.
func Cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return store.Cleanup(ctx)
}

// DetachForCleanup gives work that must finish even if the client goes
// away (revoking sessions after a clone was detected, for one) the
// request's values without its cancellation, until shortly after the
// request's deadline (store.Cleanup): the answer waits for it, and no
// answer waits much past its deadline.
func DetachForCleanup(req *http.Request) (context.Context, context.CancelFunc) {
	return store.Cleanup(req.Context())
}
