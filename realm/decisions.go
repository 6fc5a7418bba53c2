package realm

import (
	"context"
	"net/http"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// auditAllow and auditDeny record a decision taken while serving a request
// (see edge.AllowEvent), without waiting for the record.
func (r *Realm) auditAllow(req *http.Request, actor, action, resource, reason string, signals map[string]any) {
	r.auditAsync(req.Context(), edge.AllowEvent(req, actor, action, resource, reason, signals))
}

func (r *Realm) auditDeny(req *http.Request, actor, action, resource string, cause error) {
	r.auditAsync(req.Context(), edge.DenyEvent(req, actor, action, resource, cause))
}

// Every audit call says whether it waits for its record.
//
// auditAsync queues the event and returns at once; a failure to queue or
// store it is logged and counted by the audit log, and the caller goes on.
// It suits a decision whose effect does not depend on the record existing
// first: a read, a join, a deny, a report of something that already
// happened.
//
// auditAndWait returns only once the block holding the event is stored,
// and returns the failure if it is not. A caller whose effect must never
// outrun its audit record (an asset leaving its owner, after a breach as
// much as before) acts only if it returns nil: a decision that is not on
// record is not acted on.
//
// Neither is abandoned because the client hung up, nor waits past the
// request's deadline: a record not stored by then fails the request, whose
// effect then does not happen.
func (r *Realm) auditAsync(ctx context.Context, ev audit.Event) {
	ctx, cancel := edge.DetachKeepingDeadline(ctx)
	defer cancel()
	if err := r.audit.Record(ctx, ev); err != nil {
		r.log.Error("audit", "action", ev.Action, "actor", ev.Actor, "err", err)
	}
}

func (r *Realm) auditAndWait(ctx context.Context, ev audit.Event) error {
	ctx, cancel := edge.DetachKeepingDeadline(ctx)
	defer cancel()
	if err := r.audit.Commit(ctx, ev); err != nil {
		r.log.Error("audit", "action", ev.Action, "actor", ev.Actor, "err", err)
		return err
	}
	return nil
}

// queuedAuditor gives the realm's parts the audit calls that do not wait
// for the record, under the names their Auditor interfaces declare.
type queuedAuditor struct{ r *Realm }

func (a queuedAuditor) AllowQueued(req *http.Request, actor, action, resource, reason string, signals map[string]any) {
	a.r.auditAllow(req, actor, action, resource, reason, signals)
}

func (a queuedAuditor) DenyQueued(req *http.Request, actor, action, resource string, cause error) {
	a.r.auditDeny(req, actor, action, resource, cause)
}

func (a queuedAuditor) RecordQueued(ctx context.Context, ev audit.Event) { a.r.auditAsync(ctx, ev) }
