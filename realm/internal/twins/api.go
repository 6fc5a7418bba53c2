package twins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// Auditor records a decision taken while serving a request, with the
// request's id among its signals, without waiting for it to be stored: a
// refusal and a rejection change nothing that the record must precede.
type Auditor interface {
	AllowQueued(req *http.Request, actor, action, resource, reason string, signals map[string]any)
	DenyQueued(req *http.Request, actor, action, resource string, cause error)
}

// SessionWatcher ends a console feed when its session ends: it calls end
// with the close reason when sess expires, idles out or is revoked, until
// stop is called or ctx ends. A console sends nothing, so its use is the
// session's HTTP requests: the feed counts as used when it connected.
type SessionWatcher func(ctx context.Context, sess session.Session, end func(reason string)) (stop func())

// Deps is what the API needs from the rest of the realm.
type Deps struct {
	Edge    *edge.Edge
	Decider command.Decider
	Trust   command.TrustReader
	Audit   Auditor
	// Origins are the browser origins allowed to open the feed.
	Origins      func() []string
	WatchSession SessionWatcher
	// MaxFeedsPerAvatar caps the console feeds one avatar holds open on
	// this node at once (0 or negative: no cap): each holds a socket, two
	// goroutines and a queue, so one avatar must not open them without
	// end.
	MaxFeedsPerAvatar int
}

// API serves the twin routes and the console feed of one node.
type API struct {
	edge *edge.Edge
	deps Deps
	feed *feedHub

	// Bound once by the composition root before the realm reports ready;
	// handlers read them only behind the edge's ready check.
	svc *command.Service
	log *slog.Logger

	// stopBeforeStoring is the project's tests' stop point (set through
	// realm/internal/probe, never in service): a node that dies after the
	// gateway answered a command and before the answer is stored under
	// its Idempotency-Key. When it says so for a key, given the answer's
	// status and body, the answer is neither stored nor sent, and the
	// connection is cut.
	stopBeforeStoring atomic.Pointer[func(key string, status int, body []byte) bool]
}

// errStoppedBeforeStoring ends a request at stopBeforeStoring.
var errStoppedBeforeStoring = errors.New("twins: stopped before storing the answer (a test's stop point)")

// StopBeforeStoring sets the tests' stop point (see API.stopBeforeStoring);
// nil clears it.
func (a *API) StopBeforeStoring(stop func(key string, status int, body []byte) bool) {
	if stop == nil {
		a.stopBeforeStoring.Store(nil)
		return
	}
	a.stopBeforeStoring.Store(&stop)
}

// New returns the API; Bind gives it the command service once the realm
// has started it. Its feed (Events) exists from the start, for the
// service to report to.
func New(d Deps) *API {
	return &API{edge: d.Edge, deps: d, feed: newFeedHub(), log: slog.New(slog.DiscardHandler)}
}

// Bind gives the API the started command service and the node's logger.
func (a *API) Bind(svc *command.Service, log *slog.Logger) {
	a.svc, a.log = svc, log
}

// Events is where the command service reports what consoles follow.
func (a *API) Events() command.Events { return a.feed }

// CloseSession ends the session's consoles on this node (close code 4401)
// and says how many there were.
func (a *API) CloseSession(sessionID, reason string) int {
	return a.feed.closeSession(sessionID, reason)
}

// Close ends every console of this node.
func (a *API) Close() { a.feed.closeAll() }

// Routes registers the twin and approval routes.
func (a *API) Routes(mux *http.ServeMux) {
	// An agent may read the twins and command their actuators within its
	// delegation (ViewTwin, CommandActuator); the console's feed, the
	// step-up digest and approvals are a person's.
	mux.HandleFunc("GET /v1/twins", a.edge.AuthedOrAgent(a.handleTwins))
	mux.HandleFunc("GET /v1/twins/feed", a.edge.Authed(a.handleFeed))
	mux.HandleFunc("GET /v1/twins/{twin}", a.edge.AuthedOrAgent(a.handleTwin))
	mux.HandleFunc("POST /v1/twins/{twin}/actuators/{actuator}/commands", a.edge.AuthedOrAgent(a.handleCommand))
	mux.HandleFunc("POST /v1/twins/{twin}/actuators/{actuator}/commands/digest", a.edge.Authed(a.handleCommandDigest))
	mux.HandleFunc("GET /v1/approvals", a.edge.Authed(a.handleApprovals))
	mux.HandleFunc("GET /v1/approvals/{id}", a.edge.Authed(a.handleApproval))
	mux.HandleFunc("POST /v1/approvals/{id}/approve", a.edge.Authed(a.handleApprove))
	mux.HandleFunc("POST /v1/approvals/{id}/reject", a.edge.Authed(a.handleReject))
}

func operatorOf(p edge.Principal) command.Operator {
	return command.Operator{Session: p.Session, Avatar: p.Avatar, Agent: p.Agent}
}

// writeError answers a refusal; an agent's (its delegation revoked since
// it was authenticated, say) with the DPoP challenge of its reason.
func (a *API) writeError(w http.ResponseWriter, req *http.Request, err error) {
	if agents.ReasonOf(err) != "" {
		a.edge.WriteAgentError(w, req, Problem(err))
		return
	}
	a.edge.WriteError(w, req, Problem(err))
}

// Problem is err as the twin routes answer it, for a caller that answers
// outside HTTP (an agent's MCP tool): edge.PublicDetail of it is the text
// the route would show.
func Problem(err error) error {
	if agents.ReasonOf(err) != "" {
		return edge.AgentError(err)
	}
	return err
}

// readCommandRequest parses a command request's body and its
// Idempotency-Key header.
func readCommandRequest(w http.ResponseWriter, req *http.Request) (twin.CommandRequest, string, error) {
	if ct := req.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return twin.CommandRequest{}, "", &edge.Error{Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, twin.MaxCommandBytes))
	if err != nil {
		return twin.CommandRequest{}, "", &edge.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("command body larger than %d bytes", twin.MaxCommandBytes), Err: err}
	}
	cr, err := twin.ParseCommandRequest(body)
	if err != nil {
		return cr, "", err
	}
	return cr, req.Header.Get("Idempotency-Key"), nil
}

// newCommand is the command p asks for: an agent's commands are its own
// (its rate, its Idempotency-Keys), never its owner's.
func newCommand(p edge.Principal, twinID, actuatorID, key string, cr twin.CommandRequest) (twin.Command, error) {
	if key == "" {
		return twin.Command{}, edge.BadRequest("send an Idempotency-Key header (1 to 64 of A-Z a-z 0-9 . _ : -): it names the command, and its hash, across retries")
	}
	return twin.NewCommand(twinID, actuatorID, operatorOf(p).ID(), key, cr)
}

// readCommand parses a command request: the body, the path and the
// Idempotency-Key header.
func readCommand(w http.ResponseWriter, req *http.Request, p edge.Principal) (twin.Command, twin.CommandRequest, error) {
	cr, key, err := readCommandRequest(w, req)
	if err != nil {
		return twin.Command{}, cr, err
	}
	c, err := newCommand(p, req.PathValue("twin"), req.PathValue("actuator"), key, cr)
	return c, cr, err
}

// handleCommandDigest tells a console the hash of a command before it is
// sent, so the operator can step up for it (and an approver approve it).
// Only to an avatar that may view the twin (ViewTwin): the answer names
// the actuator's risk.
func (a *API) handleCommandDigest(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	c, _, err := readCommand(w, req, p)
	if err != nil {
		a.writeError(w, req, err)
		return
	}
	_, act, err := a.svc.Registry().Lookup(c.Twin, c.Actuator)
	if err != nil {
		a.writeError(w, req, err)
		return
	}
	// The answer tells the actuator's risk, which is part of the twin's
	// view: someone the policy does not let view the twin learns nothing
	// here either (the decision is audited like every ViewTwin).
	if d := a.viewer(req.Context(), p).may(req.Context(), c.Twin); !d.Allow {
		a.edge.WriteError(w, req, viewDenied(d.Reason))
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"hash": c.Hash().Hex(), "typed_data": c.TypedData(), "risk": act.Risk,
		"needs_step_up": twin.NeedsStepUp(act.Risk), "needs_approval": twin.NeedsApproval(act.Risk),
	})
}

// handleCommand decides one command and, when it is allowed, answers with
// the gateway's signed acknowledgement; 202 when a critical command waits
// for a second operator (see command.Service.Execute).
func (a *API) handleCommand(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	cr, key, err := readCommandRequest(w, req)
	if err != nil {
		a.denyCommand(w, req, p, scenes.ActuatorUID(req.PathValue("twin"), req.PathValue("actuator")), err)
		return
	}
	out, err := a.Command(req, p, req.PathValue("twin"), req.PathValue("actuator"), key, cr)
	switch {
	case errors.Is(err, errStoppedBeforeStoring):
		panic(http.ErrAbortHandler) // as a node that dies here: no answer at all
	case err != nil:
		a.writeError(w, req, err)
	case out.Replayed:
		edge.WriteReplayed(w, out.Status, out.Body)
	default:
		if out.Location != "" {
			w.Header().Set("Location", out.Location)
		}
		edge.WriteBody(w, out.Status, out.Body)
	}
}

// CommandOutcome is what a command came to, as the HTTP API answers it:
// its status and JSON body (a command.Answer), and whether it is the first
// answer given again to a retry.
type CommandOutcome struct {
	Status   int
	Body     []byte
	Replayed bool
	// Location is where an agent polls its command waiting for its owner.
	Location string
}

// Command decides one command of p (a person or an agent) made while
// serving req, and carries it out when it is allowed: the one path of the
// HTTP route and of an agent's MCP tool. The Idempotency-Key names the
// command across retries (see package idempotency): a retry gets the first
// answer, byte for byte. An error is a refusal, audited already, for the
// caller to answer with (writeError).
func (a *API) Command(req *http.Request, p edge.Principal, twinID, actuatorID, key string, cr twin.CommandRequest) (CommandOutcome, error) {
	ctx := req.Context()
	resource := scenes.ActuatorUID(twinID, actuatorID)
	c, err := newCommand(p, twinID, actuatorID, key, cr)
	if err != nil {
		return CommandOutcome{}, a.auditRefusal(req, p, resource, err)
	}
	// A key claimed by a node that lost track of its command (it stopped
	// before storing the answer) is settled here from the gateway's
	// journal when it can be (command.Service.ClaimCommand).
	prev, err := a.svc.ClaimCommand(ctx, c)
	switch {
	case err != nil:
		return CommandOutcome{}, err
	case prev != nil:
		return CommandOutcome{Status: prev.Status, Body: prev.Answer, Replayed: true}, nil
	}
	answer, err := a.svc.ExecuteClaimed(ctx, operatorOf(p), c, cr)
	if errors.Is(err, command.ErrOutcomePending) {
		// The gateway is carrying out an earlier grant of the command: the
		// key stays claimed until its outcome is settled, and the refusal
		// is on the audit record with the decision.
		return CommandOutcome{}, err
	}
	if err != nil {
		// A refused command may be retried under the same key, after a
		// step-up for instance: free the key.
		cctx, cancel := edge.Cleanup(ctx)
		rerr := a.svc.ReleaseCommand(cctx, c)
		cancel()
		if rerr != nil {
			a.log.Warn("free the key of a refused command", "err", rerr)
		}
		return CommandOutcome{}, a.auditRefusal(req, p, resource, err)
	}
	status, location := http.StatusOK, ""
	switch answer.Status {
	case command.StatusPendingApproval:
		status = http.StatusAccepted
	case command.StatusPendingOwner:
		status, location = http.StatusAccepted, "/v1/agents/approvals/"+answer.OwnerApproval.ID
	}
	body := command.EncodeAnswer(answer)
	if stop := a.stopBeforeStoring.Load(); stop != nil && (*stop)(key, status, body) {
		return CommandOutcome{}, errStoppedBeforeStoring
	}
	cctx, cancel := edge.Cleanup(ctx)
	defer cancel()
	if err := a.svc.CompleteCommand(cctx, c, status, body); err != nil {
		a.log.Warn("keep command answer for retries", "err", err)
	}
	return CommandOutcome{Status: status, Body: body, Location: location}, nil
}

// denyCommand audits a refusal that happened before any grant and answers
// with its problem.
func (a *API) denyCommand(w http.ResponseWriter, req *http.Request, p edge.Principal, resource policy.UID, err error) {
	a.writeError(w, req, a.auditRefusal(req, p, resource, err))
}

// auditRefusal records a command's refusal before any grant, unless it is
// a policy decision (on the record already), and returns it.
func (a *API) auditRefusal(req *http.Request, p edge.Principal, resource policy.UID, err error) error {
	if !command.IsPolicyDeny(err) {
		// Counted by reason in the log; the audit carries the detail.
		if reason := twin.ReasonOf(err); reason != "" {
			a.log.Info("command refused", "reason", reason, "err", err)
		}
		a.deps.Audit.DenyQueued(req, operatorOf(p).ID(), scenes.ActionCommandActuator, resource.String(), err)
	}
	return err
}

// --- approvals ---

// handleApprovals lists the pending approvals of the twins the avatar may
// view (ViewTwin): a command's twin, value and reason are not for everyone.
func (a *API) handleApprovals(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	pending, err := a.svc.PendingApprovals(req.Context())
	if err != nil {
		a.writeError(w, req, err)
		return
	}
	viewer := a.viewer(req.Context(), p)
	var visible []command.Approval
	for _, rec := range pending {
		if viewer.may(req.Context(), rec.Command.Twin).Allow {
			visible = append(visible, rec)
		}
	}
	slices.SortFunc(visible, func(x, y command.Approval) int { return x.Created.Compare(y.Created) })
	out := []map[string]any{}
	for _, rec := range visible {
		out = append(out, a.svc.Approved(rec))
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

func (a *API) handleApproval(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	rec, _, err := a.svc.LoadApproval(req.Context(), req.PathValue("id"))
	if err != nil {
		a.writeError(w, req, err)
		return
	}
	if d := a.viewer(req.Context(), p).may(req.Context(), rec.Command.Twin); !d.Allow {
		a.edge.WriteError(w, req, viewDenied(d.Reason))
		return
	}
	edge.WriteJSON(w, http.StatusOK, a.svc.Approved(rec))
}

// handleApprove is the second operator's approval of a critical command
// (see command.Service.DecideApproval).
func (a *API) handleApprove(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	a.decideApproval(w, req, p, true)
}

func (a *API) handleReject(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	a.decideApproval(w, req, p, false)
}

func (a *API) decideApproval(w http.ResponseWriter, req *http.Request, p edge.Principal, approve bool) {
	ctx := req.Context()
	rec, rev, err := a.svc.LoadApproval(ctx, req.PathValue("id"))
	if err != nil {
		a.writeError(w, req, err)
		return
	}
	c := rec.Command
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	action := map[bool]string{true: command.ActionApprove, false: command.ActionReject}[approve]
	rec, err = a.svc.DecideApproval(ctx, operatorOf(p), rec, rev, approve)
	if err != nil {
		if !command.IsPolicyDeny(err) {
			a.deps.Audit.DenyQueued(req, p.Avatar.ID, action, resource.String(), err)
		}
		a.edge.WriteError(w, req, err)
		return
	}
	if !approve {
		a.deps.Audit.AllowQueued(req, p.Avatar.ID, action, resource.String(), "rejected by a second operator", map[string]any{"command": c.Hash().Hex()})
	}
	edge.WriteJSON(w, http.StatusOK, a.svc.Approved(rec))
}

// --- reading twins ---

type (
	ActuatorView struct {
		twin.Actuator
		State *twin.State `json:"state,omitempty"`
	}
	TwinView struct {
		ID        string         `json:"id"`
		Name      string         `json:"name,omitempty"`
		Scene     string         `json:"scene"`
		Zone      string         `json:"zone"`
		Gateway   string         `json:"gateway,omitempty"` // the address that signs its acknowledgements
		Actuators []ActuatorView `json:"actuators"`
	}
)

func (a *API) viewTwin(t twin.Twin) TwinView {
	v := TwinView{ID: t.ID, Name: t.Name, Scene: t.Scene, Zone: t.Zone, Actuators: []ActuatorView{}}
	if k, ok := a.svc.Gateways().Key(t.ID); ok {
		v.Gateway = k.Hex()
	}
	for _, act := range t.Actuators {
		al := ActuatorView{Actuator: act}
		if s, ok := a.svc.Registry().State(t.ID, act.ID); ok {
			al.State = &s
		}
		v.Actuators = append(v.Actuators, al)
	}
	return v
}

// handleTwins lists the twins the avatar may view; an avatar that may view
// none is refused, with the policy's reason.
func (a *API) handleTwins(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	viewer := a.viewer(req.Context(), p)
	out := []TwinView{}
	for _, t := range viewer.visible(req.Context()) {
		out = append(out, a.viewTwin(t))
	}
	if len(out) == 0 && viewer.firstDeny != nil {
		a.edge.WriteError(w, req, viewer.refusal())
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"twins": out, "grant_key": a.svc.GrantKey().Hex()})
}

func (a *API) handleTwin(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	v, err := a.View(req.Context(), p, req.PathValue("twin"))
	if err != nil {
		a.writeError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, v)
}

// StateJSON is View as JSON, for an agent's MCP tool.
func (a *API) StateJSON(ctx context.Context, p edge.Principal, twinID string) (json.RawMessage, error) {
	v, err := a.View(ctx, p, twinID)
	if err != nil {
		return nil, err
	}
	return edge.EncodeJSON(v), nil
}

// CommandJSON is Command's answer body, for an agent's MCP tool.
func (a *API) CommandJSON(req *http.Request, p edge.Principal, twinID, actuatorID, key string, cr twin.CommandRequest) (json.RawMessage, error) {
	out, err := a.Command(req, p, twinID, actuatorID, key, cr)
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// View is one twin with its actuators' state, if p may view it: a
// decision of its scene's policies (ViewTwin), audited; a refusal is an
// error with its reason. The one path of the HTTP route and of an agent's
// MCP tool.
func (a *API) View(ctx context.Context, p edge.Principal, twinID string) (TwinView, error) {
	t, ok := a.svc.Registry().Twin(twinID)
	if !ok {
		return TwinView{}, &twin.Refusal{Reason: twin.ReasonUnknownTwin, Detail: "no twin " + strconv.Quote(twinID)}
	}
	if d := a.viewer(ctx, p).may(ctx, t.ID); !d.Allow {
		return TwinView{}, viewDenied(d.Reason)
	}
	return a.viewTwin(t), nil
}
