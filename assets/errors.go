package assets

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/zerorealm/zerorealm/internal/problem"
)

var (
	// ErrInvalid reports input the ledger refuses before looking at any
	// state: malformed intents, unknown collections, amounts out of range,
	// badly encoded signatures. Nothing was changed.
	ErrInvalid = errors.New("assets: invalid input")

	// ErrRejected reports a well-formed intent that may not be applied:
	// see RejectError for the reason. Nothing was changed, except that a
	// nonce the intent consumed stays consumed (see Ledger.Transfer).
	ErrRejected = errors.New("assets: intent rejected")

	// ErrConflict reports that the asset or balance changed while the
	// intent was applied; re-read it and sign again.
	ErrConflict = errors.New("assets: concurrent change")

	// ErrNotFound reports an unknown asset, receipt or checkpoint.
	ErrNotFound = errors.New("assets: not found")

	// ErrNotCheckpointed reports a receipt whose checkpoint has not been
	// signed yet, so it has no inclusion proof yet.
	ErrNotCheckpointed = errors.New("assets: receipt not checkpointed yet")
)

// Reason says why an intent was refused, in words a client can act on.
type Reason string

// The reasons of RejectError.
const (
	ReasonMalformed         Reason = "malformed"          // ErrInvalid
	ReasonUnknownCollection Reason = "unknown-collection" // ErrInvalid
	ReasonAmountRange       Reason = "amount-out-of-range"
	ReasonSignatureEncoding Reason = "signature-encoding" // ErrInvalid: length, hex, recovery id
	ReasonHighS             Reason = "signature-high-s"   // ErrInvalid: malleable signature
	ReasonWrongDomain       Reason = "wrong-domain"       // signed for another chain, contract or version
	ReasonWrongSigner       Reason = "wrong-signer"       // the signature is not the owner's
	ReasonExpired           Reason = "expired"            // the deadline has passed
	ReasonNonceUsed         Reason = "nonce-used"         // replay: the owner's nonce is spent
	ReasonNonceCancelled    Reason = "nonce-cancelled"    // below the owner's nonce floor
	ReasonNotOwner          Reason = "not-owner"          // from does not own the asset
	ReasonInsufficient      Reason = "insufficient-balance"
	ReasonNotYours          Reason = "not-your-address" // from is neither a linked wallet nor the custodial key of the caller
	ReasonWalletTaken       Reason = "wallet-taken"     // linked to another avatar
)

// RejectError is the reason an intent was not applied. It wraps ErrInvalid
// for the reasons that are the caller's encoding mistakes, ErrRejected for
// the others.
type RejectError struct {
	Reason Reason
	Detail string
}

// invalidf is ErrInvalid with a detail a client may be shown.
func invalidf(format string, args ...any) error {
	return problem.Invalid(ErrInvalid, fmt.Sprintf(format, args...))
}

// missingf is ErrNotFound with a detail a client may be shown.
func missingf(format string, args ...any) error {
	return problem.Missing(ErrNotFound, fmt.Sprintf(format, args...))
}

// Problem is how a client is told of the rejection: malformed intents are
// 400, ones the ledger's state refuses (not the owner, spent nonce) 409,
// and the rest, which policy or signatures refuse, 403.
func (e *RejectError) Problem() *problem.Error {
	status := http.StatusForbidden
	switch e.Reason {
	case ReasonMalformed, ReasonUnknownCollection, ReasonAmountRange, ReasonSignatureEncoding, ReasonHighS:
		status = http.StatusBadRequest
	case ReasonNotOwner, ReasonInsufficient, ReasonNonceUsed, ReasonWalletTaken:
		status = http.StatusConflict
	}
	return &problem.Error{Status: status, Type: problem.TransferRejected, Detail: fmt.Sprintf("rejected (%s): %s", e.Reason, e.Detail), Err: e}
}

func (e *RejectError) Error() string { return fmt.Sprintf("assets: %s: %s", e.Reason, e.Detail) }

// Unwrap gives the sentinel of the reason.
func (e *RejectError) Unwrap() error {
	switch e.Reason {
	case ReasonMalformed, ReasonUnknownCollection, ReasonAmountRange, ReasonSignatureEncoding, ReasonHighS:
		return ErrInvalid
	}
	return ErrRejected
}

func reject(reason Reason, format string, args ...any) error {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
