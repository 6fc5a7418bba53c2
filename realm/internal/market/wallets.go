package market

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

func (api *API) handleWallet(w http.ResponseWriter, _ *http.Request, p edge.Principal) {
	wallets, custodial := api.s.ledger.Addresses(p.Avatar.ID)
	ws := []map[string]string{}
	for _, a := range wallets {
		ws = append(ws, map[string]string{"address": a.Hex(), "next_nonce": strconv.FormatUint(api.s.ledger.NextNonce(a), 10)})
	}
	out := map[string]any{"avatar": p.Avatar.ID, "wallets": ws}
	if custodial != (common.Address{}) {
		out["custodial"] = map[string]string{"address": custodial.Hex(), "next_nonce": strconv.FormatUint(api.s.ledger.NextNonce(custodial), 10)}
	}
	edge.WriteJSON(w, http.StatusOK, out)
}

type linkRequest struct {
	Wallet    string      `json:"wallet"`
	Deadline  assets.Uint `json:"deadline,omitempty"`
	Signature string      `json:"signature,omitempty"`
}

// linkDeadline is how long a LinkWallet payload may wait for its signature.
const linkDeadline = 10 * time.Minute

// readLink reads a link request and the wallet it names.
func readLink(w http.ResponseWriter, req *http.Request) (linkRequest, common.Address, error) {
	var in linkRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		return in, common.Address{}, err
	}
	wallet, err := assets.ParseAddress(in.Wallet)
	if err != nil {
		return in, common.Address{}, edge.BadRequest("wallet: " + err.Error())
	}
	return in, wallet, nil
}

func (api *API) handleLinkPayload(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	_, wallet, err := readLink(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	link := assets.LinkWallet{Avatar: p.Avatar.ID, Wallet: wallet, Deadline: uint64(api.s.now().Add(linkDeadline).Unix())}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.LinkTypedData(&link), Digest: api.s.scheme.LinkDigest(&link).Hex()})
}

func (api *API) handleLink(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	in, wallet, err := readLink(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	sig, err := assets.ParseSignature(in.Signature)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	link := assets.LinkWallet{Avatar: p.Avatar.ID, Wallet: wallet, Deadline: uint64(in.Deadline)}
	if err := api.s.ledger.LinkWallet(req.Context(), link, sig); err != nil {
		api.s.audit.DenyQueued(req, p.Avatar.ID, "LinkWallet", "Wallet::"+strconv.Quote(wallet.Hex()), err)
		api.edge.WriteError(w, req, err)
		return
	}
	api.s.audit.AllowQueued(req, p.Avatar.ID, "LinkWallet", "Wallet::"+strconv.Quote(wallet.Hex()), "the wallet signed the LinkWallet message", nil)
	api.handleWallet(w, req, p)
}

func (api *API) handleCustodial(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	if _, err := api.s.ledger.Custodial(req.Context(), p.Avatar.ID); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	api.handleWallet(w, req, p)
}
