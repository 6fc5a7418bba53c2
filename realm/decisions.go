package realm

import (
	"context"
	"net/http"
	"sync"

	"github.com/zerorealm/zerorealm/internal/audit"
)

// auditAllow and auditDeny record a decision taken while serving a request.
// The request id goes with the signals so an audit entry leads to the log
// lines of the same request.
func (r *Realm) auditAllow(req *http.Request, actor, action, resource, reason string, signals map[string]any) {
	r.auditRecord(req.Context(), audit.Event{
		Actor: actor, Action: action, Resource: resource, Outcome: audit.Allow,
		Reasons: []string{reason}, Signals: withRequestID(req, signals),
	})
}

func (r *Realm) auditDeny(req *http.Request, actor, action, resource string, cause error) {
	detail := problemFor(cause).detail
	r.auditRecord(req.Context(), audit.Event{
		Actor: actor, Action: action, Resource: resource, Outcome: audit.Deny,
		Reasons: []string{detail}, Signals: withRequestID(req, nil),
	})
}

// auditRecord records a decision. Within a context from onRecord it waits
// until the event's block is stored and notes a failure there; otherwise
// it only queues the event.
func (r *Realm) auditRecord(ctx context.Context, ev audit.Event) {
	// The audit write must not be abandoned because the client hung up,
	// nor wait past the request's deadline: a commit not stored by then
	// fails the request, whose effect then does not happen (onRecord).
	ctx, cancel := detachKeepingDeadline(ctx)
	defer cancel()
	if w, ok := ctx.Value(onRecordKey{}).(*decisionsOnRecord); ok {
		if err := r.audit.Commit(ctx, ev); err != nil {
			w.fail(err)
			r.log.Error("audit", "action", ev.Action, "actor", ev.Actor, "err", err)
		}
		return
	}
	if err := r.audit.Record(ctx, ev); err != nil {
		r.log.Error("audit", "action", ev.Action, "actor", ev.Actor, "err", err)
	}
}

// decisionsOnRecord collects, for one request, whether every decision
// audited under it was stored.
type decisionsOnRecord struct {
	mu  sync.Mutex
	err error
}

type onRecordKey struct{}

// onRecord returns a context under which the decisions audited (decide,
// auditAllow, auditDeny) are stored before they return, and what tells
// whether they all were. A request whose effect must never outrun its
// audit record (an asset leaving its owner, after a breach as much as
// before) acts only if err is nil: a decision that is not on record is
// not acted on.
func onRecord(ctx context.Context) (context.Context, *decisionsOnRecord) {
	w := &decisionsOnRecord{}
	return context.WithValue(ctx, onRecordKey{}, w), w
}

func (w *decisionsOnRecord) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// Err is the first failure to store a decision, or nil.
func (w *decisionsOnRecord) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func withRequestID(req *http.Request, signals map[string]any) map[string]any {
	if signals == nil {
		signals = map[string]any{}
	}
	signals["request_id"] = requestIDFrom(req.Context())
	return signals
}
