package realm

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/zerorealm/zerorealm/internal/audit"
	idemkeys "github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
)

const (
	// approvalTTL is how long a critical command waits for its approver.
	approvalTTL = 10 * time.Minute
	// idempotencyTTL is how long a command's answer is kept for a retry
	// with the same Idempotency-Key.
	idempotencyTTL = 10 * time.Minute
)

// Signals of a command's audit event beyond the policy's, and the result
// recorded when no acknowledgement came back.
const (
	auditDecision     = "decision"
	auditCommand      = "command"
	auditNonce        = "nonce"
	auditValue        = "value"
	auditApprovers    = "approvers"
	auditResult       = "result"
	resultUndelivered = "undelivered"
)

// Command statuses in answers.
const (
	statusDone            = "done"
	statusRefused         = "refused" // by the gateway
	statusFailed          = "failed"  // the gateway's driver failed
	statusPendingApproval = "pending_approval"
	statusRejected        = "rejected"
	statusInProgress      = "in_progress"
)

type (
	twinCommandView struct {
		Twin     string  `json:"twin"`
		Actuator string  `json:"actuator"`
		Op       string  `json:"op"`
		Value    float64 `json:"value"`
		Unit     string  `json:"unit"`
		Key      string  `json:"key"`
		Operator string  `json:"operator"`
		Hash     string  `json:"hash"`
		Reason   string  `json:"reason,omitempty"`
		// Zone is where the realm saw the operator when it decided.
		Zone string `json:"zone,omitempty"`
	}
	signedView struct {
		TypedData typedDataView `json:"typed_data"`
		Signature string        `json:"signature"`
		Signer    string        `json:"signer"`
	}
	ackView struct {
		Result string  `json:"result"`
		Reason string  `json:"reason,omitempty"`
		Detail string  `json:"detail,omitempty"`
		Value  float64 `json:"value"`
		Target float64 `json:"target"`
		signedView
	}
	commandAnswer struct {
		Status   string          `json:"status"`
		Command  twinCommandView `json:"command"`
		Decision *decisionView   `json:"decision,omitempty"`
		Approval *approvalView   `json:"approval,omitempty"`
		Grant    *signedView     `json:"grant,omitempty"`
		Ack      *ackView        `json:"ack,omitempty"`
	}
	approvalView struct {
		ID        string    `json:"id"`
		Status    string    `json:"status"`
		Requester string    `json:"requester"`
		Approver  string    `json:"approver,omitempty"`
		Created   time.Time `json:"created"`
		Expires   time.Time `json:"expires"`
	}
	// approvalRecord is a critical command waiting for, or past, its
	// second operator. Its key is the command hash.
	approvalRecord struct {
		Command twin.Command `json:"command"`
		Reason  string       `json:"reason,omitempty"`
		// Zone is where the realm saw the requester when they asked; the
		// approved command is decided with where it sees them then.
		Zone      string         `json:"zone,omitempty"`
		Requester string         `json:"requester"`
		Session   string         `json:"session"`
		Created   time.Time      `json:"created"`
		Status    string         `json:"status"`
		Approver  string         `json:"approver,omitempty"`
		Answer    *commandAnswer `json:"answer,omitempty"`
	}
)

// typedDataView is a signed document as eth_signTypedData_v4 JSON. An
// answer made by the realm builds it only when the answer is encoded: the
// typed data is for a client to check the signature, and an answer the
// realm consumes in-process (or never sends) need not pay for it.
type typedDataView struct {
	apitypes.TypedData
	build func() apitypes.TypedData
}

func lazyTypedData(build func() apitypes.TypedData) typedDataView {
	return typedDataView{build: build}
}

// Typed is the typed data, built if need be.
func (v *typedDataView) Typed() apitypes.TypedData {
	if v.build != nil {
		return v.build()
	}
	return v.TypedData
}

func (v typedDataView) MarshalJSON() ([]byte, error) { return json.Marshal(v.Typed()) }

func (v *typedDataView) UnmarshalJSON(data []byte) error {
	v.build = nil
	return json.Unmarshal(data, &v.TypedData)
}

func (rec *approvalRecord) view() *approvalView {
	return &approvalView{ID: rec.Command.Hash().Hex(), Status: rec.Status, Requester: rec.Requester, Approver: rec.Approver,
		Created: rec.Created, Expires: rec.Created.Add(approvalTTL)}
}

func viewCommand(c twin.Command, a twin.Actuator, req twin.CommandRequest) twinCommandView {
	return viewCommandHashed(c, c.Hash().Hex(), a, req)
}

// viewCommandHashed is viewCommand for a caller that has the hash already.
func viewCommandHashed(c twin.Command, hash string, a twin.Actuator, req twin.CommandRequest) twinCommandView {
	return twinCommandView{Twin: c.Twin, Actuator: c.Actuator, Op: string(c.Op), Value: c.Value(), Unit: a.Unit, Key: c.Key,
		Operator: c.Operator, Hash: hash, Reason: req.Reason, Zone: req.Zone}
}

// readCommand parses a command request: the body, the path and the
// Idempotency-Key header.
func (r *Realm) readCommand(w http.ResponseWriter, req *http.Request, p edge.Principal) (twin.Command, twin.CommandRequest, error) {
	if ct := req.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return twin.Command{}, twin.CommandRequest{}, &edge.Error{Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, twin.MaxCommandBytes))
	if err != nil {
		return twin.Command{}, twin.CommandRequest{}, &edge.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("command body larger than %d bytes", twin.MaxCommandBytes), Err: err}
	}
	cr, err := twin.ParseCommandRequest(body)
	if err != nil {
		return twin.Command{}, cr, err
	}
	key := req.Header.Get("Idempotency-Key")
	if key == "" {
		return twin.Command{}, cr, edge.BadRequest("send an Idempotency-Key header (1 to 64 of A-Z a-z 0-9 . _ : -): it names the command, and its hash, across retries")
	}
	c, err := twin.NewCommand(req.PathValue("twin"), req.PathValue("actuator"), p.Avatar.ID, key, cr)
	return c, cr, err
}

// handleCommandDigest tells a console the hash of a command before it is
// sent, so the operator can step up for it (and an approver approve it).
func (r *Realm) handleCommandDigest(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	c, _, err := r.readCommand(w, req, p)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	_, a, err := r.twins.reg.Lookup(c.Twin, c.Actuator)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"hash": c.Hash().Hex(), "typed_data": c.TypedData(), "risk": a.Risk,
		"needs_step_up": a.Risk.NeedsStepUp(), "needs_approval": a.Risk.NeedsApproval(),
	})
}

// handleTwinCommand decides one command and, when it is allowed, sends its
// grant to the twin's gateway and answers with the gateway's signed
// acknowledgement. A critical command is queued for a second operator.
// The Idempotency-Key names the command across retries (see package
// idempotency): a retry gets the first answer, byte for byte.
func (r *Realm) handleTwinCommand(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	ctx := req.Context()
	resource := scenes.ActuatorUID(req.PathValue("twin"), req.PathValue("actuator"))
	c, cr, err := r.readCommand(w, req, p)
	if err != nil {
		r.denyCommand(w, req, p, resource, err)
		return
	}
	keys := idemkeys.New(r.twins.results, "twin-commands")
	hash := c.Hash()
	prev, err := keys.Claim(ctx, c.Operator, c.Key, hash[:])
	switch {
	case err != nil:
		r.edge.WriteError(w, req, err)
		return
	case prev != nil && !prev.Done():
		r.edge.WriteError(w, req, idemkeys.ErrInProgress)
		return
	case prev != nil:
		writeReplayed(w, prev.Status, prev.Answer)
		return
	}
	answer, status, err := r.commandOnce(ctx, p, c, cr)
	if err != nil {
		// A refused command may be retried under the same key, after a
		// step-up for instance: free the key.
		if rerr := keys.Release(context.WithoutCancel(ctx), c.Operator, c.Key); rerr != nil {
			r.log.Warn("free the key of a refused command", "err", rerr)
		}
		r.denyCommand(w, req, p, resource, err)
		return
	}
	body := encodeAnswer(answer)
	if err := keys.Complete(context.WithoutCancel(ctx), c.Operator, c.Key, hash[:], status, body); err != nil {
		r.log.Warn("keep command answer for retries", "err", err)
	}
	writeBody(w, status, body)
}

// denyCommand audits a refusal that happened before any grant and answers
// with its problem.
func (r *Realm) denyCommand(w http.ResponseWriter, req *http.Request, p edge.Principal, resource policy.UID, err error) {
	if !isPolicyDeny(err) { // policy decisions are audited by decide itself
		r.twinRefusals(err)
		r.auditDeny(req, p.Avatar.ID, scenes.ActionCommandActuator, resource.String(), err)
	}
	r.edge.WriteError(w, req, err)
}

// twinRefusals counts refusals by reason in the log, the audit carrying
// the detail.
func (r *Realm) twinRefusals(err error) {
	if reason := twin.ReasonOf(err); reason != "" {
		r.log.Info("command refused", "reason", reason, "err", err)
	}
}

type policyDeny struct{ d policy.Decision }

func (e *policyDeny) Error() string { return "policy: " + e.d.Reason }

func isPolicyDeny(err error) bool {
	var pd *policyDeny
	return errors.As(err, &pd)
}

// commandOnce runs the checks that do not need policy, the step-up, and
// then either queues the command for approval or carries it out.
func (r *Realm) commandOnce(ctx context.Context, p edge.Principal, c twin.Command, cr twin.CommandRequest) (*commandAnswer, int, error) {
	h := r.twins
	_, a, err := h.guard.Check(c)
	if err != nil {
		return nil, 0, err
	}
	sc := h.sceneOf[c.Twin]
	if cr.Zone != "" {
		// A wrong assertion is refused before it spends a step-up.
		if _, err := r.commandStanding(sc, p, cr.Zone); err != nil {
			return nil, 0, err
		}
	}
	hash := c.Hash()
	if a.Risk.NeedsStepUp() {
		if err := r.stepups.consume(ctx, p.Session.ID, hash[:]); err != nil {
			return nil, 0, err
		}
	}
	assessment := r.trust.assess(ctx, p.Session)
	if a.Risk.NeedsApproval() {
		return r.queueApproval(ctx, sc, p, assessment, c, a, cr)
	}
	answer, err := r.carryOut(ctx, sc, p, assessment, c, a, cr, a.Risk.NeedsStepUp(), nil)
	return answer, http.StatusOK, err
}

func commandContext(zone string, stepUp, approved bool) map[string]any {
	return map[string]any{scenes.ContextAvatarZone: zone, scenes.ContextStepUp: stepUp, scenes.ContextApproved: approved}
}

// commandStanding is where the realm sees the operator for a command on a
// twin of sc: the zone its presence in the scene was admitted into, on
// this node or another (presence.go), never a zone the client names. The
// request's zone, when given, is only the operator's assertion of where
// they stand: a command asserted from another zone than the one the realm
// sees is refused, since the operator meant it from somewhere else.
func (r *Realm) commandStanding(sc *scenes.Scene, p edge.Principal, asserted string) (standing, error) {
	st := r.presence.whereIs(sc.ID, p.Avatar.ID, p.Session.ID)
	if asserted != "" && asserted != st.zone {
		return st, &edge.Error{Status: http.StatusForbidden, Detail: fmt.Sprintf("zone_mismatch: the command says you stand in zone %s, but %s", asserted, st)}
	}
	return st, nil
}

// commandDenied is a policy deny of a command, its reason followed by
// where the realm sees the operator, since that is what most denies turn
// on.
func commandDenied(d policy.Decision, st standing) error {
	return &edge.Error{Status: http.StatusForbidden, Detail: "policy: " + d.Reason + "; " + st.String(), Err: &policyDeny{d}}
}

// queueApproval records a critical command for a second operator, once
// the policy says it would be allowed with an approval.
func (r *Realm) queueApproval(ctx context.Context, sc *scenes.Scene, p edge.Principal, as trust.Assessment, c twin.Command, a twin.Actuator, cr twin.CommandRequest) (*commandAnswer, int, error) {
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	// Asked as if approved: the question now is whether anything but the
	// approval stands in the way. The approval itself is decided again
	// when it comes, with the requester's trust at that time.
	st, err := r.commandStanding(sc, p, cr.Zone)
	if err != nil {
		return nil, 0, err
	}
	cr.Zone = st.zone
	d := r.decide(ctx, sc, p, as, scenes.ActionCommandActuator, resource, commandContext(st.zone, true, true))
	if !d.Allow {
		return nil, 0, commandDenied(d, st)
	}
	rec := approvalRecord{Command: c, Reason: cr.Reason, Zone: cr.Zone, Requester: p.Avatar.ID, Session: p.Session.ID, Created: time.Now().UTC(), Status: statusPendingApproval}
	data, _ := json.Marshal(rec)
	if _, err := r.twins.approvals.Create(ctx, approvalKey(c), data); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, 0, &edge.Error{Status: http.StatusConflict, Detail: "this command is already waiting for approval (GET /v1/approvals)", Err: err}
		}
		return nil, 0, err
	}
	dv := viewDecision(scenes.ActionCommandActuator, resource, d)
	answer := &commandAnswer{Status: statusPendingApproval, Command: viewCommand(c, a, cr), Decision: &dv, Approval: rec.view()}
	r.twins.console.push(consoleMessage{Type: "approval", Approval: answer})
	return answer, http.StatusAccepted, nil
}

func approvalKey(c twin.Command) string {
	h := c.Hash()
	return hex.EncodeToString(h[:])
}

// decideCommand asks the scene's policies about a command, as decide does,
// but returns the audit event instead of recording it: carryOut records
// the decision and what came of it as one event.
func (r *Realm) decideCommand(ctx context.Context, sc *scenes.Scene, p edge.Principal, as trust.Assessment, resource policy.UID, extra map[string]any) (policy.Decision, audit.Event) {
	pctx := policyContext(p, as)
	for k, v := range extra {
		pctx[k] = v
	}
	req := policy.Request{
		Principal: policy.UID{Type: scenes.TypeAvatar, ID: p.Avatar.ID},
		Action:    scenes.ActionUID(scenes.ActionCommandActuator),
		Resource:  resource,
		Context:   pctx,
		Entities:  []policy.Entity{avatarEntity(p)},
	}
	if shared, ok := r.twins.entities[sc]; ok {
		req.Shared = shared
	} else {
		req.Entities = append(sc.Entities(), req.Entities...)
	}
	d, err := sc.Policies.Decide(ctx, req)
	if err != nil {
		d.Allow = false
		if d.Reason == "" {
			d.Reason = "the request could not be evaluated: " + err.Error()
		}
	}
	ev := audit.Event{Actor: p.Avatar.ID, Action: scenes.ActionCommandActuator, Resource: resource.String(),
		Outcome: audit.Allow, Policies: d.Policies, Signals: pctx}
	if !d.Allow {
		ev.Outcome, ev.Reasons = audit.Deny, []string{d.Reason}
	}
	return d, ev
}

// carryOut takes the policy decision, signs the grant and delivers it.
//
// The decision and its outcome are one audit event, recorded when the
// gateway has answered or the delivery has failed, whichever way carryOut
// returns: allow when the gateway carried the command out, deny otherwise,
// with the deciding policies, the signals (decision: allow) and the grant's
// command hash and nonce. A policy deny is recorded at once.
func (r *Realm) carryOut(ctx context.Context, sc *scenes.Scene, p edge.Principal, as trust.Assessment, c twin.Command, a twin.Actuator, cr twin.CommandRequest, stepUp bool, approvers []string) (*commandAnswer, error) {
	h := r.twins
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	st, err := r.commandStanding(sc, p, cr.Zone)
	if err != nil {
		return nil, err
	}
	cr.Zone = st.zone
	d, ev := r.decideCommand(ctx, sc, p, as, resource, commandContext(st.zone, stepUp, len(approvers) > 0))
	if !d.Allow {
		r.auditAsync(ctx, ev)
		return nil, commandDenied(d, st)
	}
	hash := c.Hash()
	hashHex := hash.Hex()
	sg := h.disp.GrantFor(c, hash, p.Session.ID, approvers)
	ev.Signals[auditDecision] = string(audit.Allow)
	ev.Signals[auditCommand] = hashHex
	ev.Signals[auditNonce] = sg.Grant.Nonce
	ev.Signals[auditValue] = c.Value()
	ev.Signals[auditApprovers] = approvers
	ev.Signals[auditResult] = resultUndelivered
	ev.Outcome, ev.Reasons = audit.Deny, []string{"the grant was signed but the delivery did not complete"}
	defer func() { r.auditAsync(ctx, ev) }()

	dv := viewDecision(scenes.ActionCommandActuator, resource, d)
	answer := &commandAnswer{Command: viewCommandHashed(c, hashHex, a, cr), Decision: &dv,
		Grant: &signedView{TypedData: lazyTypedData(sg.Grant.TypedData), Signature: sg.Signature.Hex(), Signer: h.signerHex}}
	sa, err := h.disp.Deliver(ctx, sg)
	if err != nil && sa.Ack.Result == "" {
		// No verified answer: whether the gateway acted is unknown to the
		// realm, but the grant expires within seconds either way.
		ev.Reasons = []string{"policy allowed; delivery failed: " + err.Error()}
		return nil, err
	}
	ack := sa.Ack
	answer.Status = string(ack.Result)
	answer.Ack = &ackView{Result: string(ack.Result), Reason: string(ack.Reason), Detail: ack.Detail,
		Value: twin.FromMicro(ack.ValueMicro), Target: twin.FromMicro(ack.TargetMicro),
		signedView: signedView{TypedData: lazyTypedData(ack.TypedData), Signature: sa.Signature.Hex(), Signer: h.gatewayKeyHex(c.Twin)}}
	ev.Signals[auditResult] = string(ack.Result)
	if ack.Result != twin.ResultDone {
		ev.Reasons = []string{fmt.Sprintf("policy allowed; gateway %s: %s %s", ack.Result, ack.Reason, ack.Detail)}
		r.log.Info("gateway refused a grant", "twin", c.Twin, "actuator", c.Actuator, "reason", ack.Reason)
	} else {
		ev.Outcome, ev.Reasons = audit.Allow, []string{"policy allowed; the gateway carried out the grant"}
		h.reg.SetState(c.Twin, c.Actuator, twin.State{Value: twin.FromMicro(ack.ValueMicro), Target: twin.FromMicro(ack.TargetMicro),
			Moving: ack.ValueMicro != ack.TargetMicro, At: twin.FromMillis(ack.At)})
	}
	h.console.push(consoleMessage{Type: "outcome", Outcome: answer})
	return answer, nil
}

// --- approvals ---

func (r *Realm) loadApproval(ctx context.Context, id string) (approvalRecord, uint64, error) {
	id = strings.TrimPrefix(strings.ToLower(id), "0x")
	if len(id) != 64 {
		return approvalRecord{}, 0, &edge.Error{Status: http.StatusNotFound, Detail: "approval ids are command hashes: 0x and 64 hex digits"}
	}
	if _, err := hex.DecodeString(id); err != nil {
		return approvalRecord{}, 0, &edge.Error{Status: http.StatusNotFound, Detail: "approval ids are command hashes: 0x and 64 hex digits"}
	}
	e, err := r.twins.approvals.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return approvalRecord{}, 0, &edge.Error{Status: http.StatusNotFound, Detail: "no such approval (they expire after 10 minutes)"}
	}
	if err != nil {
		return approvalRecord{}, 0, err
	}
	var rec approvalRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return approvalRecord{}, 0, err
	}
	return rec, e.Revision, nil
}

func (r *Realm) approvalAnswer(rec approvalRecord) map[string]any {
	_, a, _ := r.twins.reg.Lookup(rec.Command.Twin, rec.Command.Actuator)
	out := map[string]any{"approval": rec.view(), "command": viewCommand(rec.Command, a, twin.CommandRequest{Reason: rec.Reason, Zone: rec.Zone})}
	if rec.Answer != nil {
		out["answer"] = rec.Answer
	}
	return out
}

// handleApprovals lists the pending approvals of the twins the avatar may
// view (ViewTwin): a command's twin, value and reason are not for everyone.
func (r *Realm) handleApprovals(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	keys, err := r.twins.approvals.Keys(req.Context())
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	viewer := r.twinViewer(req.Context(), p)
	out := []map[string]any{}
	for _, k := range keys {
		rec, _, err := r.loadApproval(req.Context(), k)
		if err != nil || rec.Status != statusPendingApproval || !viewer.may(req.Context(), rec.Command.Twin).Allow {
			continue
		}
		out = append(out, r.approvalAnswer(rec))
	}
	slices.SortFunc(out, func(a, b map[string]any) int {
		return a["approval"].(*approvalView).Created.Compare(b["approval"].(*approvalView).Created)
	})
	edge.WriteJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

func (r *Realm) handleApproval(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	rec, _, err := r.loadApproval(req.Context(), req.PathValue("id"))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if d := r.twinViewer(req.Context(), p).may(req.Context(), rec.Command.Twin); !d.Allow {
		r.edge.WriteError(w, req, twinViewDenied(d.Reason))
		return
	}
	edge.WriteJSON(w, http.StatusOK, r.approvalAnswer(rec))
}

// handleApprove is the second operator's approval of a critical command:
// an ApproveCommand decision for them, their own step-up bound to the
// command hash, and then the command itself, decided again for its
// requester, whose session must still be live.
func (r *Realm) handleApprove(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	r.decideApproval(w, req, p, true)
}

func (r *Realm) handleReject(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	r.decideApproval(w, req, p, false)
}

var errSelfApproval = &edge.Error{Status: http.StatusForbidden, Detail: "a command cannot be approved by the operator who requested it; a second operator must approve"}

func (r *Realm) decideApproval(w http.ResponseWriter, req *http.Request, p edge.Principal, approve bool) {
	ctx := req.Context()
	h := r.twins
	rec, rev, err := r.loadApproval(ctx, req.PathValue("id"))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	c := rec.Command
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	action := map[bool]string{true: "ApproveCommand", false: "RejectCommand"}[approve]
	fail := func(err error) {
		if !isPolicyDeny(err) {
			r.auditDeny(req, p.Avatar.ID, action, resource.String(), err)
		}
		r.edge.WriteError(w, req, err)
	}
	if rec.Status != statusPendingApproval {
		fail(&edge.Error{Status: http.StatusConflict, Detail: "this command is no longer waiting for approval: " + rec.Status})
		return
	}
	if approve && p.Avatar.ID == rec.Requester {
		fail(errSelfApproval)
		return
	}
	sc := h.sceneOf[c.Twin]
	as := r.trust.assess(ctx, p.Session)
	d := r.decide(ctx, sc, p, as, scenes.ActionApproveCommand, resource, map[string]any{"command": c.Hash().Hex()})
	if !d.Allow {
		fail(&edge.Error{Status: http.StatusForbidden, Detail: "policy: " + d.Reason, Err: &policyDeny{d}})
		return
	}
	if approve {
		hash := c.Hash()
		if err := r.stepups.consume(ctx, p.Session.ID, hash[:]); err != nil {
			fail(err)
			return
		}
	}
	rec.Approver = p.Avatar.ID
	rec.Status = map[bool]string{true: statusInProgress, false: statusRejected}[approve]
	data, _ := json.Marshal(rec)
	if rev, err = h.approvals.Update(ctx, approvalKey(c), data, rev); err != nil {
		fail(err)
		return
	}
	if !approve {
		r.auditAllow(req, p.Avatar.ID, action, resource.String(), "rejected by a second operator", map[string]any{"command": c.Hash().Hex()})
		edge.WriteJSON(w, http.StatusOK, r.approvalAnswer(rec))
		return
	}
	answer, err := r.executeApproved(ctx, rec, p)
	rec.Status = statusRefused
	if err == nil {
		rec.Status, rec.Answer = answer.Status, answer
	}
	data, _ = json.Marshal(rec)
	if _, uerr := h.approvals.Update(context.WithoutCancel(ctx), approvalKey(c), data, rev); uerr != nil {
		r.log.Warn("record approval outcome", "err", uerr)
	}
	if err != nil {
		fail(err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, r.approvalAnswer(rec))
}

var errRequesterGone = &edge.Error{Status: http.StatusConflict, Detail: "the requester's session has ended or was revoked; the command cannot be carried out"}

func (r *Realm) executeApproved(ctx context.Context, rec approvalRecord, approver edge.Principal) (*commandAnswer, error) {
	h := r.twins
	sess, err := r.sessions.Get(ctx, rec.Session)
	if err != nil || sess.Revoked || time.Now().After(sess.Expires) {
		return nil, errRequesterGone
	}
	av, err := r.avatars.Get(ctx, sess.Avatar)
	if err != nil {
		return nil, errRequesterGone
	}
	requester := edge.Principal{Session: sess, Avatar: av}
	_, a, err := h.guard.Check(rec.Command)
	if err != nil {
		return nil, err
	}
	as := r.trust.assess(ctx, sess)
	// Decided again where the realm sees the requester now, not where it
	// saw them when they asked: the machine moves now, and the requester
	// must still see it.
	return r.carryOut(ctx, h.sceneOf[rec.Command.Twin], requester, as, rec.Command, a, twin.CommandRequest{Reason: rec.Reason}, true, []string{approver.Avatar.ID})
}

// --- reading twins ---

type (
	twinActuatorLive struct {
		twin.Actuator
		State *twin.State `json:"state,omitempty"`
	}
	twinLive struct {
		ID        string             `json:"id"`
		Name      string             `json:"name,omitempty"`
		Scene     string             `json:"scene"`
		Zone      string             `json:"zone"`
		Gateway   string             `json:"gateway,omitempty"` // the address that signs its acknowledgements
		Actuators []twinActuatorLive `json:"actuators"`
	}
)

func (r *Realm) viewTwin(t twin.Twin) twinLive {
	v := twinLive{ID: t.ID, Name: t.Name, Scene: t.Scene, Zone: t.Zone, Actuators: []twinActuatorLive{}}
	if a, ok := r.twins.gatewayKey(t.ID); ok {
		v.Gateway = a.Hex()
	}
	for _, a := range t.Actuators {
		al := twinActuatorLive{Actuator: a}
		if s, ok := r.twins.reg.State(t.ID, a.ID); ok {
			al.State = &s
		}
		v.Actuators = append(v.Actuators, al)
	}
	return v
}

// handleTwins lists the twins the avatar may view; an avatar that may view
// none is refused, with the policy's reason.
func (r *Realm) handleTwins(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	viewer := r.twinViewer(req.Context(), p)
	out := []twinLive{}
	for _, t := range viewer.visible(req.Context()) {
		out = append(out, r.viewTwin(t))
	}
	if len(out) == 0 && viewer.firstDeny != nil {
		r.edge.WriteError(w, req, viewer.refusal())
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"twins": out, "grant_key": r.twins.signer.Address().Hex()})
}

func (r *Realm) handleTwin(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	t, ok := r.twins.reg.Twin(req.PathValue("twin"))
	if !ok {
		r.edge.WriteError(w, req, &twin.Refusal{Reason: twin.ReasonUnknownTwin, Detail: "no twin " + quote(req.PathValue("twin"))})
		return
	}
	if d := r.twinViewer(req.Context(), p).may(req.Context(), t.ID); !d.Allow {
		r.edge.WriteError(w, req, twinViewDenied(d.Reason))
		return
	}
	edge.WriteJSON(w, http.StatusOK, r.viewTwin(t))
}
