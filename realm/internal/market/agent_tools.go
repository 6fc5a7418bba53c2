package market

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// What an agent's MCP tools call (realm/internal/mcpapi): the very path
// of the route, without HTTP around it.

// TransferOutcome is an agent's transfer as POST /v1/assets/transfers
// answers it: its status (201 with the receipt, 200 for an intent applied
// before, 202 waiting for the owner with Location) and JSON body.
type TransferOutcome struct {
	Status   int
	Body     json.RawMessage
	Location string
}

// AgentTransfer carries out the transfer request body (the route's body)
// for the agent of p under Idempotency-Key key, exactly as the route does.
func (api *API) AgentTransfer(ctx context.Context, p edge.Principal, body []byte, key string) (TransferOutcome, error) {
	in, err := assets.DecodeTransferRequest(body)
	if err != nil {
		return TransferOutcome{}, err
	}
	out, err := api.s.applyAgentTransfer(ctx, p, in, body, key, false)
	if err != nil {
		return TransferOutcome{}, err
	}
	if out.pending != nil {
		return TransferOutcome{Status: http.StatusAccepted, Body: edge.EncodeJSON(out.pending.View()), Location: ApprovalPath(out.pending.ID)}, nil
	}
	status := http.StatusCreated
	if out.replayed {
		status = http.StatusOK
	}
	return TransferOutcome{Status: status, Body: api.s.appendTransferAnswer(nil, out.digest, &out.receipt)}, nil
}

// Holding is one address of an avatar with what it holds, as GET
// /v1/assets/owners/{address} shows it (its first page of items).
type Holding struct {
	Address   string        `json:"address"`
	Custodial bool          `json:"custodial"`
	Items     []assetView   `json:"items"`
	Balances  []balanceView `json:"balances"`
	NextNonce uint64        `json:"next_nonce,string"`
}

// maxHoldingItems bounds the items listed per address.
const maxHoldingItems = 100

// Holdings is what the avatar's linked wallets and custodial address
// hold: public on the ledger, listed for an agent of the avatar.
func (api *API) Holdings(avatarID string) []Holding {
	wallets, custodial := api.s.ledger.Addresses(avatarID)
	out := []Holding{}
	add := func(a common.Address, isCustodial bool) {
		items, _ := api.s.ledger.AssetsOf(a, "", maxHoldingItems)
		h := Holding{Address: a.Hex(), Custodial: isCustodial, Items: make([]assetView, len(items)), NextNonce: api.s.ledger.NextNonce(a)}
		for i, it := range items {
			h.Items[i] = viewAsset(it)
		}
		for _, b := range api.s.ledger.BalancesOf(a) {
			h.Balances = append(h.Balances, viewBalance(b))
		}
		if h.Balances == nil {
			h.Balances = []balanceView{}
		}
		out = append(out, h)
	}
	if custodial != (common.Address{}) {
		add(custodial, true)
	}
	for _, w := range wallets {
		add(w, false)
	}
	return out
}
