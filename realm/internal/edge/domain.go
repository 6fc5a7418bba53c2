package edge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/twin"
)

func isAssetError(err error) bool {
	return errors.Is(err, assets.ErrInvalid) || errors.Is(err, assets.ErrRejected) ||
		errors.Is(err, assets.ErrConflict) || errors.Is(err, assets.ErrNotFound) || errors.Is(err, assets.ErrNotCheckpointed)
}

func assetProblem(err error) (int, string) {
	var re *assets.RejectError
	if errors.As(err, &re) {
		status := http.StatusForbidden
		switch re.Reason {
		case assets.ReasonMalformed, assets.ReasonUnknownCollection, assets.ReasonAmountRange,
			assets.ReasonSignatureEncoding, assets.ReasonHighS:
			status = http.StatusBadRequest
		case assets.ReasonNotOwner, assets.ReasonInsufficient, assets.ReasonNonceUsed, assets.ReasonWalletTaken:
			status = http.StatusConflict
		}
		return status, fmt.Sprintf("rejected (%s): %s", re.Reason, re.Detail)
	}
	msg := strings.TrimPrefix(err.Error(), "assets: ")
	switch {
	case errors.Is(err, assets.ErrConflict):
		return http.StatusConflict, "the asset changed concurrently: read it again and sign a new intent"
	case errors.Is(err, assets.ErrNotCheckpointed):
		return http.StatusNotFound, "the receipt is not in a signed checkpoint yet; retry after the next checkpoint"
	case errors.Is(err, assets.ErrNotFound):
		return http.StatusNotFound, msg
	}
	return http.StatusBadRequest, msg
}

// TwinDetail is the text a client sees for a twin error: a refusal's
// reason and detail.
func TwinDetail(err error) string {
	var rf *twin.Refusal
	if errors.As(err, &rf) {
		return string(rf.Reason) + ": " + rf.Detail
	}
	return strings.TrimPrefix(err.Error(), "twin: ")
}

// SessionEndWord is how a client is told a session ended: "revoked" or
// "expired".
func SessionEndWord(kind error) string {
	if errors.Is(kind, session.ErrRevoked) {
		return "revoked"
	}
	return "expired"
}
