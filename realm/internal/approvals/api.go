package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Audited action names.
const (
	ActionApprove = "ApproveAgentAction"
	ActionReject  = "RejectAgentAction"
	ActionCancel  = "CancelAgentAction"
)

// MessageType is the realm WebSocket message that carries a waiting
// action to its owner's connections (clients/PROTOCOL.md).
const MessageType = "agent-approval"

// Queue is the approval queue (approval.Queue).
type Queue interface {
	Get(ctx context.Context, owner, id string) (approval.Pending, error)
	List(ctx context.Context, owner string) ([]approval.Pending, error)
	Approve(ctx context.Context, owner, id string, confirm func(digest []byte) error) (approval.Pending, error)
	Reject(ctx context.Context, owner, id string) (approval.Pending, error)
	Cancel(ctx context.Context, owner, id, agent string) (approval.Pending, error)
}

// StepUps spends the owner's passkey step-up bound to a digest
// (identity.StepUps).
type StepUps interface {
	Consume(ctx context.Context, sessionID string, digest []byte) error
}

// Deps is what the API needs once the realm has started.
type Deps struct {
	Log         *slog.Logger
	Queue       Queue
	StepUps     StepUps
	AuditNoWait func(ctx context.Context, ev audit.Event)
	// Settler settles approved actions whose node stopped (Reconcile).
	Settler Settler
}

// API serves the approval routes.
type API struct {
	edge *edge.Edge
	*Deps
}

// New makes the API; its routes may be registered before Bind.
func New(e *edge.Edge) *API { return &API{edge: e} }

// Bind gives the API what it needs; the composition root calls it once,
// during start-up, before the realm reports ready.
func (a *API) Bind(d Deps) error {
	if d.Log == nil || d.Queue == nil || d.StepUps == nil || d.AuditNoWait == nil || d.Settler == nil {
		return errors.New("approvals: every dependency is required")
	}
	a.Deps = &d
	return nil
}

// Routes registers the routes on mux.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/agents/approvals", a.edge.Authed(a.handleList))
	mux.HandleFunc("GET /v1/agents/approvals/{id}", a.edge.AuthedOrAgent(a.handleGet))
	mux.HandleFunc("POST /v1/agents/approvals/{id}/approve", a.edge.Authed(a.handleApprove))
	mux.HandleFunc("POST /v1/agents/approvals/{id}/reject", a.edge.Authed(a.handleReject))
	mux.HandleFunc("DELETE /v1/agents/approvals/{id}", a.edge.AgentAuthed(a.handleCancel))
}

// handleList is the owner's actions, newest first.
func (a *API) handleList(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	ps, err := a.Queue.List(req.Context(), p.Avatar.ID)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	out := make([]approval.View, len(ps))
	for i := range ps {
		out[i] = ps[i].View()
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

// handleGet is one action, for its owner or the agent that asked for it
// (any other agent of the owner is told there is none).
func (a *API) handleGet(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	pa, err := a.Queue.Get(req.Context(), p.Avatar.ID, req.PathValue("id"))
	if err == nil && p.IsAgent() && pa.Agent != p.Agent.ID {
		err = &edge.Error{Status: http.StatusNotFound, Detail: "no pending action of this agent with that id"}
	}
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if pa.State == approval.StatePending || pa.State == approval.StateApproved {
		// Still moving: a polling agent is told when to look again.
		w.Header().Set("Retry-After", "2")
	}
	edge.WriteJSON(w, http.StatusOK, pa.View())
}

// handleApprove approves the action after the owner's step-up bound to
// its digest and answers what came of it: done with its result, or
// failed with the problem the fresh decision gave.
func (a *API) handleApprove(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	pa, err := a.Queue.Approve(req.Context(), p.Avatar.ID, req.PathValue("id"), func(digest []byte) error {
		return a.StepUps.Consume(req.Context(), p.Session.ID, digest)
	})
	a.answer(w, req, p, ActionApprove, pa, err, "the owner approved it with a passkey step-up bound to the action")
}

func (a *API) handleReject(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	pa, err := a.Queue.Reject(req.Context(), p.Avatar.ID, req.PathValue("id"))
	a.answer(w, req, p, ActionReject, pa, err, "the owner rejected it")
}

// handleCancel withdraws the calling agent's own waiting action.
func (a *API) handleCancel(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	pa, err := a.Queue.Cancel(req.Context(), p.Avatar.ID, req.PathValue("id"), p.Agent.ID)
	a.answer(w, req, p, ActionCancel, pa, err, "the agent withdrew it")
}

// answer audits a decision on an action, with the agent's chain, and
// answers the record.
func (a *API) answer(w http.ResponseWriter, req *http.Request, p edge.Principal, action string, pa approval.Pending, err error, why string) {
	actor := p.Avatar.ID
	if p.IsAgent() {
		actor = p.Agent.ID
	}
	ev := audit.Event{
		Actor: actor, Action: action, Resource: `AgentAction::"` + req.PathValue("id") + `"`, Outcome: audit.Allow,
		Reasons: []string{why},
		Signals: map[string]any{"chain": pa.Chain, "agent": pa.Agent, "action": pa.Action, "action_digest": pa.Digest, "state": pa.State},
	}
	if err != nil {
		if pa.ID == "" {
			// Nothing of the owner's was found: nothing to audit.
			a.edge.WriteError(w, req, err)
			return
		}
		ev.Outcome, ev.Reasons = audit.Deny, []string{err.Error()}
		a.AuditNoWait(req.Context(), ev)
		a.edge.WriteError(w, req, err)
		return
	}
	a.AuditNoWait(req.Context(), ev)
	edge.WriteJSON(w, http.StatusOK, pa.View())
}

// Message is the realm WebSocket message of a record, sent at at:
// {"type": "agent-approval", "approval": {...}, "at": "<RFC 3339>"}.
func Message(p approval.Pending, at time.Time) []byte {
	b, _ := json.Marshal(struct {
		Type     string        `json:"type"`
		Approval approval.View `json:"approval"`
		At       time.Time     `json:"at"`
	}{MessageType, p.View(), at.UTC()})
	return b
}
