package decide

import (
	"context"
	"net/http"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Every audit call says whether it waits for its record.
//
// RecordQueued queues the event and returns at once; a failure to queue
// or store it is logged and counted by the audit log, and the caller goes
// on. It suits a decision whose effect does not depend on the record
// existing first: a read, a join, a deny, a report of something that
// already happened.
//
// RecordAndWait returns only once the block holding the event is stored,
// and returns the failure if it is not. A caller whose effect must never
// outrun its audit record (an asset leaving its owner, after a breach as
// much as before) acts only if it returns nil: a decision that is not on
// record is not acted on.
//
// Neither is abandoned because the client hung up, nor waits past the
// request's deadline: a record not stored by then fails the request, whose
// effect then does not happen.

// RecordQueued records ev without making the caller wait for it.
func (s *Service) RecordQueued(ctx context.Context, ev audit.Event) {
	ctx, cancel := edge.DetachKeepingDeadline(ctx)
	defer cancel()
	if err := s.deps.Audit.Record(ctx, ev); err != nil {
		s.deps.Log.Error("audit", "action", ev.Action, "actor", ev.Actor, "err", err)
	}
}

// RecordAndWait records ev and returns once it is stored, or the reason
// it was not.
func (s *Service) RecordAndWait(ctx context.Context, ev audit.Event) error {
	ctx, cancel := edge.DetachKeepingDeadline(ctx)
	defer cancel()
	if err := s.deps.Audit.Commit(ctx, ev); err != nil {
		s.deps.Log.Error("audit", "action", ev.Action, "actor", ev.Actor, "err", err)
		return err
	}
	return nil
}

// AllowQueued and DenyQueued record a decision taken while serving a
// request (see edge.AllowEvent), without waiting for the record.
func (s *Service) AllowQueued(req *http.Request, actor, action, resource, reason string, signals map[string]any) {
	s.RecordQueued(req.Context(), edge.AllowEvent(req, actor, action, resource, reason, signals))
}

func (s *Service) DenyQueued(req *http.Request, actor, action, resource string, cause error) {
	s.RecordQueued(req.Context(), edge.DenyEvent(req, actor, action, resource, cause))
}
