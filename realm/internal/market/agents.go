package market

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

// Transfers by agents (docs/agents.md). An agent transfers its owner's
// assets within its delegation: TransferAsset on the asset's collection,
// the value per transfer and per day, the auto-approval value. It is
// decided like a person's transfer, by the scene's Cedar policies, with
// the agent as the principal and context.agent; above the auto-approval
// value it waits in the owner's approval queue and runs when the owner
// approves it. Trades stay a person's.

// ApprovalKind names transfers in the owner's approval queue.
const ApprovalKind = "transfer"

// AgentDecider decides an agent's action: its delegation (scope, limits,
// its trust), then the scene's policies with the agent as the principal;
// the decision, with the agent's chain, is stored in the audit log before
// it returns, and what an allowed action uses of the delegation's limits
// is spent. awaitsOwner reports that the delegation wants the owner's
// approval first: then nothing was decided by Cedar and nothing spent.
// A non-nil error is a failure to decide: the action must not run.
type AgentDecider interface {
	DecideAgentAndWait(ctx context.Context, sc *scenes.Scene, p edge.Principal, act agents.Action, resource policy.UID, extra map[string]any, entities ...policy.Entity) (d policy.Decision, awaitsOwner bool, err error)
}

// ApprovalQueue keeps an agent's action until its owner decides
// (approval.Queue).
type ApprovalQueue interface {
	Enqueue(ctx context.Context, r approval.Request) (approval.Pending, error)
}

// AgentResumer gives back the principal of the agent whose approved action
// runs now: its chain verified again and not revoked, and its owner.
type AgentResumer interface {
	ResumeAgent(ctx context.Context, token string) (edge.Principal, error)
}

// AgentDeps is what agents' transfers need; without it (nil Decider) an
// agent's transfer is refused.
type AgentDeps struct {
	Decider   AgentDecider
	Approvals ApprovalQueue
	Resumer   AgentResumer
}

// errAwaitsOwner stops the ledger before it writes anything: the agent's
// delegation wants the owner's approval of this transfer.
var errAwaitsOwner = errors.New("market: the transfer waits for its owner's approval")

// errNoAgents: this node was started without the agents' dependencies.
var errNoAgents = &edge.Error{Status: http.StatusForbidden, Type: edge.TypeAgentForbidden, Detail: "this realm node does not carry out agents' transfers"}

// agentTransfer is what an agent's transfer came to: applied (with its
// receipt), or waiting in the owner's queue.
type agentTransfer struct {
	applied
	pending *approval.Pending
}

// transferAction is the transfer as the agents domain weighs it: its
// value is the amount moved, one for a unique item.
func transferAction(t *assets.Transfer, kind assets.Kind, approved bool) agents.Action {
	v := t.Amount
	if kind == assets.Unique {
		v = 1
	}
	return agents.Action{Name: agents.ActionTransferAsset, Resource: agents.Resource{Kind: agents.KindCollection, ID: t.Collection}, Value: v, Approved: approved}
}

// applyAgentTransfer carries out a transfer intent for the agent of p.
// The asset must be the owner's: from the owner's custodial address, the
// realm signs once the decision allows it (the delegation is the owner's
// passkey confirmation, for this collection and these limits); from a
// linked wallet, the intent comes signed. raw is the request body, kept
// with a transfer that waits for the owner. approved: the owner approved
// this very transfer (it runs from the queue).
func (s *Service) applyAgentTransfer(ctx context.Context, p edge.Principal, in assets.TransferIntent, raw []byte, idempotencyKey string, approved bool) (agentTransfer, error) {
	if s.agents.Decider == nil {
		return agentTransfer{}, errNoAgents
	}
	prepared, coll, err := s.prepareTransfer(in)
	if err != nil {
		return agentTransfer{}, err
	}
	t := in.Transfer
	digest := prepared.Digest()
	retry, release, err := s.claimKey(ctx, p, idempotencyKey, digest)
	if err != nil {
		return agentTransfer{}, err
	}
	if out, done, err := s.ifApplied(ctx, digest); done {
		return agentTransfer{applied: out}, err
	}
	sig, err := s.agentSignature(p, t.From, in.Signature, digest)
	if err != nil {
		release()
		return agentTransfer{}, err
	}
	act := transferAction(&t, coll.Kind, approved)
	rc, err := s.ledger.TransferPrepared(ctx, prepared, sig, s.authorizeAgentTransfer(p, &t, act))
	if errors.Is(err, errAwaitsOwner) {
		pa, err := s.agents.Approvals.Enqueue(ctx, approval.Request{
			Kind: ApprovalKind, Agent: p.Agent, Action: act, Payload: raw,
			Summary: fmt.Sprintf("transfer %d of %s/%s from %s to %s", t.Amount, t.Collection, t.AssetID, t.From.Hex(), t.To.Hex()),
		})
		if err != nil {
			release()
			return agentTransfer{}, err
		}
		return agentTransfer{pending: &pa}, nil
	}
	if err != nil {
		release()
		out, err := s.afterRefusal(ctx, digest, retry, err, &t)
		return agentTransfer{applied: out}, err
	}
	return agentTransfer{applied: applied{digest: digest, receipt: rc}}, nil
}

// prepareTransfer checks an intent is for this realm's domain and one of
// its collections, and hashes it.
func (s *Service) prepareTransfer(in assets.TransferIntent) (assets.PreparedTransfer, *assets.Collection, error) {
	if err := s.ledger.CheckDomain(in.Domain); err != nil {
		return assets.PreparedTransfer{}, nil, err
	}
	c, ok := s.ledger.Collection(in.Transfer.Collection)
	if !ok {
		return assets.PreparedTransfer{}, nil, &assets.RejectError{Reason: assets.ReasonUnknownCollection, Detail: "no collection " + strconv.Quote(in.Transfer.Collection)}
	}
	return s.scheme.Prepare(in.Transfer), c, nil
}

// agentSignature is the signature of an agent's transfer from owner: the
// one given, for the owner's linked wallet; the custodial key's, for the
// owner's custodial address (the ledger verifies either). Its use waits
// for the decision: the ledger asks authorize before it writes.
func (s *Service) agentSignature(p edge.Principal, from common.Address, given *assets.Signature, digest common.Hash) (assets.Signature, error) {
	wallets, custodial := s.ledger.Addresses(p.Avatar.ID)
	switch {
	case from == custodial && custodial != (common.Address{}):
		if given != nil {
			return *given, nil
		}
		return s.ledger.SignCustodial(p.Avatar.ID, digest)
	case contains(wallets, from):
		if given == nil {
			return assets.Signature{}, edge.BadRequest("signature is required: " + from.Hex() + " is a linked wallet of the owner, which signs for itself")
		}
		return *given, nil
	}
	return assets.Signature{}, &assets.RejectError{Reason: assets.ReasonNotYours,
		Detail: fmt.Sprintf("%s is neither a wallet linked to the agent's owner nor the owner's custodial address", from.Hex())}
}

func contains(as []common.Address, a common.Address) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// authorizeAgentTransfer is authorizeTransfer for an agent: the agent's
// delegation and the scene's policy decide, on record, before the ledger
// moves anything. The ledger asks again when another transfer of the
// same holder landed first; the delegation's limits were spent by the
// first answer, so a second asks with no value: the policies see the
// same amount and velocity, and nothing is spent twice.
func (s *Service) authorizeAgentTransfer(p edge.Principal, t *assets.Transfer, act agents.Action) func(context.Context, assets.Check) error {
	asked := false
	return func(ctx context.Context, chk assets.Check) error {
		c := chk.Legs[0]
		sc := s.scenes[c.ID]
		coll, ok := sc.Collection(c.ID)
		if !ok {
			return fmt.Errorf("collection %s missing from scene %s", c.ID, sc.ID)
		}
		entity := coll.AssetEntity(t.AssetID)
		extra := map[string]any{
			scenes.ContextAmount:    int64(t.Amount),
			scenes.ContextHighValue: c.Kind == assets.Fungible && t.Amount >= s.highValue,
		}
		if len(chk.Velocity) > 0 && chk.Velocity[0] != nil {
			extra[scenes.ContextVelocity] = velocityContext(chk.Velocity[0])
		}
		a := act
		if asked {
			a.Value = 0
		}
		asked = true
		d, awaits, err := s.agents.Decider.DecideAgentAndWait(ctx, sc, p, a, entity.UID, extra, entity)
		switch {
		case err != nil:
			if edge.IsAuthError(err) || agents.ReasonOf(err) != "" {
				return err // revoked or suspended since: the agent's own refusal
			}
			return &edge.Error{Status: http.StatusServiceUnavailable, Detail: "the transfer's authorization could not be stored in the audit log, so nothing moved; retry later", Err: err, NothingChanged: true}
		case awaits:
			return errAwaitsOwner
		case !d.Allow:
			return &edge.Error{Status: http.StatusForbidden, Type: edge.TypeAgentForbidden, Detail: fmt.Sprintf("the agent may not make this transfer of %s: %s", entity.UID, d.Reason)}
		}
		return nil
	}
}

// RunApproved is the approval queue's executor of transfers: the agent's
// transfer its owner approved, decided again now as the agent's (the
// chain verified and not revoked, the delegation's limits, the scene's
// policies) and carried out. Its result is the transfer's answer. A run
// that found the store or the audit log away (503) moved nothing and is
// approval.ErrOutcomeUnknown: the action stays approved and any node runs
// it again shortly (agents/approval, settle.go).
func (s *Service) RunApproved(ctx context.Context, pa approval.Pending) (json.RawMessage, error) {
	if s.agents.Resumer == nil {
		return nil, errNoAgents
	}
	p, err := s.agents.Resumer.ResumeAgent(ctx, pa.Token)
	if err != nil {
		return nil, outcomeUnknownIfUnavailable(err)
	}
	in, err := assets.DecodeTransferRequest(pa.Payload)
	if err != nil {
		return nil, err
	}
	out, err := s.applyAgentTransfer(ctx, p, in, pa.Payload, "", true)
	if err != nil {
		return nil, outcomeUnknownIfUnavailable(err)
	}
	if out.pending != nil {
		// The delegation asked for the owner's approval of an approved
		// transfer: it cannot be carried out this way.
		return nil, &edge.Error{Status: http.StatusForbidden, Type: edge.TypeAgentForbidden, Detail: "the transfer still needs its owner's approval when it runs"}
	}
	return s.appendTransferAnswer(nil, out.digest, &out.receipt), nil
}

// handleAgentTransfer is POST /v1/assets/transfers by an agent: 201 with
// the receipt, 200 for an intent applied before, or 202 with the action
// waiting for the owner, its id and a Location to poll.
func (api *API) handleAgentTransfer(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	body, err := readIntent(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTransferRequest(body)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	out, err := api.s.applyAgentTransfer(req.Context(), p, in, body, req.Header.Get("Idempotency-Key"), false)
	if err != nil {
		api.edge.WriteAgentError(w, req, err)
		return
	}
	if out.pending != nil {
		w.Header().Set("Location", ApprovalPath(out.pending.ID))
		edge.WriteJSON(w, http.StatusAccepted, out.pending.View())
		return
	}
	api.answerApplied(w, req, out.applied, nil)
}

// ApprovalPath is where an agent polls its waiting action.
func ApprovalPath(id string) string { return "/v1/agents/approvals/" + id }
