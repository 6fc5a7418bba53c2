package realm

import (
	"context"
	"errors"
	"net/http"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	idemkeys "github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Retries of transfers, trades and twin commands get the first answer
// (see package idempotency for the Idempotency-Key rules both follow):
//
//   - A transfer or trade whose signed intent was applied answers 200 with
//     its receipt, byte for byte the body of the first 201, whether or not
//     the retry carries the first request's Idempotency-Key: the intent's
//     digest is its identity, and its receipt is public. If this node
//     applied it and the first answer failed before the receipt was
//     issued, the receipt is issued now (assets.Ledger.Settle).
//   - A twin command's retry with the same Idempotency-Key answers the
//     first answer's status and body, byte for byte.
//
// Either way the answer carries Idempotent-Replayed: true.

// writeBody writes a JSON body encoded already (the edge's, shared with
// the twin commands' API).
var writeBody = edge.WriteBody

// transferKeys are the Idempotency-Keys of transfers and trades.
func (r *Realm) transferKeys() *idemkeys.Keys {
	return idemkeys.New(r.assets.idempotency, "assets")
}

// claimTransferKey takes the request's Idempotency-Key, if it has one, for
// the intent digest. It reports whether the key named this intent before
// (a retry) and, when this request took it, a function that frees it if
// the request is refused.
func (r *Realm) claimTransferKey(req *http.Request, p edge.Principal, digest common.Hash) (retry bool, release func(), err error) {
	key := req.Header.Get("Idempotency-Key")
	if key == "" {
		return false, func() {}, nil
	}
	keys := r.transferKeys()
	prev, err := keys.Claim(req.Context(), p.Avatar.ID, key, digest[:])
	if err != nil {
		return false, nil, err
	}
	if prev != nil {
		return true, func() {}, nil
	}
	return false, func() {
		if err := keys.Release(context.WithoutCancel(req.Context()), p.Avatar.ID, key); err != nil {
			r.log.Warn("free the Idempotency-Key of a refused transfer", "err", err)
		}
	}, nil
}

// answerIfApplied answers an intent that was applied already with its
// receipt and reports whether it did. A failure to settle an intent this
// node applied is answered too (the effect happened; the client retries).
func (r *Realm) answerIfApplied(w http.ResponseWriter, req *http.Request, digest common.Hash) bool {
	rc, err := r.assets.ledger.Settle(req.Context(), digest)
	switch {
	case errors.Is(err, assets.ErrNotFound):
		return false
	case err != nil:
		r.edge.WriteError(w, req, err)
		return true
	}
	w.Header().Set("Idempotent-Replayed", "true")
	r.writeTransferAnswer(w, http.StatusOK, digest, &rc)
	return true
}

// settleRefusal answers a transfer or trade refused because its asset or
// nonce moved on: if the intent itself moved it (a retry racing the
// first request, or a first answer that was lost), with its receipt; if
// the key names a first request still without a receipt, 409 to retry;
// otherwise with the refusal.
func (r *Realm) settleRefusal(w http.ResponseWriter, req *http.Request, digest common.Hash, retry bool, err error) {
	var re *assets.RejectError
	if errors.As(err, &re) && (re.Reason == assets.ReasonNotOwner || re.Reason == assets.ReasonNonceUsed) {
		if r.answerIfApplied(w, req, digest) {
			return
		}
		if retry {
			err = idemkeys.ErrInProgress
		}
	}
	r.edge.WriteError(w, req, err)
}
