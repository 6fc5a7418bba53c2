package market

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

func (api *API) handleTransferPayload(w http.ResponseWriter, req *http.Request) {
	in, err := decodeIntent(w, req, assets.DecodeTransferRequest)
	if err == nil {
		if _, ok := api.s.ledger.Collection(in.Transfer.Collection); !ok {
			err = &assets.RejectError{Reason: assets.ReasonUnknownCollection, Detail: "no collection " + strconv.Quote(in.Transfer.Collection)}
		}
	}
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.TransferTypedData(&in.Transfer), Digest: api.s.scheme.TransferDigest(&in.Transfer).Hex()})
}

func (api *API) handleTradePayload(w http.ResponseWriter, req *http.Request) {
	in, err := decodeIntent(w, req, assets.DecodeTradeRequest)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.TradeTypedData(&in.Trade), Digest: api.s.scheme.TradeDigest(&in.Trade).Hex()})
}

// decodeIntent reads an intent body and decodes it with the intent's own
// strict decoder.
func decodeIntent[I any](w http.ResponseWriter, req *http.Request, decode func([]byte) (I, error)) (I, error) {
	body, err := readIntent(w, req)
	if err != nil {
		var none I
		return none, err
	}
	return decode(body)
}

type cancelRequest struct {
	Owner      string      `json:"owner"`
	NonceFloor assets.Uint `json:"nonceFloor"`
	Deadline   assets.Uint `json:"deadline"`
	Signature  string      `json:"signature,omitempty"`
}

// readCancel reads a cancel request and the cancellation it asks for.
func readCancel(w http.ResponseWriter, req *http.Request) (cancelRequest, assets.CancelIntents, error) {
	var in cancelRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		return in, assets.CancelIntents{}, err
	}
	owner, err := assets.ParseAddress(in.Owner)
	if err != nil {
		return in, assets.CancelIntents{}, edge.BadRequest("owner: " + err.Error())
	}
	return in, assets.CancelIntents{Owner: owner, NonceFloor: uint64(in.NonceFloor), Deadline: uint64(in.Deadline)}, nil
}

func (api *API) handleCancelPayload(w http.ResponseWriter, req *http.Request) {
	_, c, err := readCancel(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.CancelTypedData(&c), Digest: api.s.scheme.CancelDigest(&c).Hex()})
}

// handleCancel raises an owner's nonce floor, cancelling every intent
// signed with a lower nonce. The owner's signature authorizes it (a
// custodial owner's, after a step-up bound to the cancellation's digest).
func (api *API) handleCancel(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	in, c, err := readCancel(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	sig, err := api.s.ownerSignature(req.Context(), p, c.Owner, in.Signature, api.s.scheme.CancelDigest(&c))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	if err := api.s.ledger.CancelIntents(req.Context(), c, sig); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"owner": c.Owner.Hex(), "next_nonce": strconv.FormatUint(api.s.ledger.NextNonce(c.Owner), 10)})
}

func (api *API) handleTransfer(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	if p.IsAgent() {
		api.handleAgentTransfer(w, req, p)
		return
	}
	apply(api, w, req, p, "transfer", assets.DecodeTransferRequest, api.s.applyTransfer)
}

func (api *API) handleTrade(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	apply(api, w, req, p, "trade", assets.DecodeTradeRequest, api.s.applyTrade)
}

// apply reads an intent with its strict decoder, has the service carry it
// out under the request's Idempotency-Key, and answers. An intent that
// was read is timed to its receipt or refusal (Deps.TransferTimed).
func apply[I any](api *API, w http.ResponseWriter, req *http.Request, p edge.Principal, kind string, decode func([]byte) (I, error), carryOut func(context.Context, edge.Principal, I, string) (applied, error)) {
	start := time.Now()
	in, err := decodeIntent(w, req, decode)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	out, err := carryOut(req.Context(), p, in, req.Header.Get("Idempotency-Key"))
	if timed := api.s.transferTimed; timed != nil {
		outcome := "receipt"
		switch {
		case err != nil:
			outcome = "refused"
		case out.replayed:
			outcome = "replayed"
		}
		timed(kind, outcome, time.Since(start))
	}
	api.answerApplied(w, req, out, err)
}

// answerApplied answers a transfer or trade: 201 with the new receipt, or
// 200 with the same bytes, marked Idempotent-Replayed, for an intent
// applied already.
func (api *API) answerApplied(w http.ResponseWriter, req *http.Request, out applied, err error) {
	switch {
	case err != nil:
		api.edge.WriteError(w, req, err)
	case out.replayed:
		w.Header().Set("Idempotent-Replayed", "true")
		api.writeTransferAnswer(w, http.StatusOK, out.digest, &out.receipt)
	default:
		api.writeTransferAnswer(w, http.StatusCreated, out.digest, &out.receipt)
	}
}

// answerBuffers recycles the buffers of transfer answers.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// writeTransferAnswer writes a transfer's answer ({"digest", "sequence",
// "receipt"}, the TransferAnswer schema), compact and without
// reflection: every transfer and trade answers with it, and the indented,
// map-based encoding cost more than the answer's signature. A retry
// answered with status 200 gets the same bytes as the first 201.
func (api *API) writeTransferAnswer(w http.ResponseWriter, status int, digest common.Hash, rc *assets.SignedReceipt) {
	bp := answerBuffers.Get().(*[]byte)
	b := api.s.appendTransferAnswer((*bp)[:0], digest, rc)
	edge.WriteBody(w, status, b)
	*bp = b
	answerBuffers.Put(bp)
}

// appendTransferAnswer appends a transfer's answer to b.
func (s *Service) appendTransferAnswer(b []byte, digest common.Hash, rc *assets.SignedReceipt) []byte {
	b = append(b, `{"digest":"`...)
	b = append(b, digest.Hex()...)
	b = append(b, `","sequence":`...)
	b = strconv.AppendUint(b, rc.Receipt.Sequence, 10)
	b = append(b, `,"receipt":`...)
	b = s.scheme.AppendReceiptJSON(b, rc)
	return append(b, "}\n"...)
}

type mintRequest struct {
	Collection string      `json:"collection"`
	Item       string      `json:"item,omitempty"`
	To         string      `json:"to"`
	Amount     assets.Uint `json:"amount,omitempty"`
}

// handleMint creates assets outside the scene catalogs; only avatars with
// the admin role may.
func (api *API) handleMint(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	resource := "Mint"
	if !slices.Contains(p.Avatar.Roles, api.s.adminRole) {
		err := &edge.Error{Status: http.StatusForbidden, Detail: "minting needs the " + api.s.adminRole + " role"}
		api.s.audit.DenyQueued(req, p.Avatar.ID, "MintAsset", resource, err)
		api.edge.WriteError(w, req, err)
		return
	}
	var in mintRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	to, err := assets.ParseAddress(in.To)
	if err != nil {
		api.edge.WriteError(w, req, edge.BadRequest("to: "+err.Error()))
		return
	}
	seq, err := api.s.ledger.Mint(req.Context(), in.Collection, in.Item, to, uint64(in.Amount))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	api.s.audit.AllowQueued(req, p.Avatar.ID, "MintAsset", in.Collection+"/"+in.Item, "admin role", map[string]any{"to": to.Hex(), "amount": uint64(in.Amount)})
	edge.WriteJSON(w, http.StatusCreated, map[string]any{"sequence": seq})
}
