package edge

import (
	"net/http"

	"github.com/zerorealm/zerorealm/internal/audit"
)

// AllowEvent and DenyEvent are the audit records of a decision taken while
// serving req. The request id goes with the signals so an audit entry
// leads to the log lines of the same request; a denial's reason is the
// detail the client was told, never an internal error text.
func AllowEvent(req *http.Request, actor, action, resource, reason string, signals map[string]any) audit.Event {
	return audit.Event{
		Actor: actor, Action: action, Resource: resource, Outcome: audit.Allow,
		Reasons: []string{reason}, Signals: WithRequestID(req, signals),
	}
}

func DenyEvent(req *http.Request, actor, action, resource string, cause error) audit.Event {
	return audit.Event{
		Actor: actor, Action: action, Resource: resource, Outcome: audit.Deny,
		Reasons: []string{PublicDetail(cause)}, Signals: WithRequestID(req, nil),
	}
}

// WithRequestID adds the request's id to an audit record's signals.
func WithRequestID(req *http.Request, signals map[string]any) map[string]any {
	if signals == nil {
		signals = map[string]any{}
	}
	signals["request_id"] = RequestID(req.Context())
	return signals
}
