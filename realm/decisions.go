package realm

import (
	"context"
	"net/http"

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
	_, detail := problemFor(cause)
	r.auditRecord(req.Context(), audit.Event{
		Actor: actor, Action: action, Resource: resource, Outcome: audit.Deny,
		Reasons: []string{detail}, Signals: withRequestID(req, nil),
	})
}

func (r *Realm) auditRecord(ctx context.Context, ev audit.Event) {
	// The audit write must not be abandoned because the client hung up.
	if err := r.audit.Record(context.WithoutCancel(ctx), ev); err != nil {
		r.log.Error("audit", "action", ev.Action, "actor", ev.Actor, "err", err)
	}
}

func withRequestID(req *http.Request, signals map[string]any) map[string]any {
	if signals == nil {
		signals = map[string]any{}
	}
	signals["request_id"] = requestIDFrom(req.Context())
	return signals
}
