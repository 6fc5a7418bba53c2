package mcpapi

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Market lists an agent's owner's holdings and carries out the agent's
// transfers along the very path of POST /v1/assets/transfers
// (realm/internal/market): the delegation, the scene's Cedar policies,
// the owner's queue above the auto-approval value, the audit, the
// Idempotency-Key.
type Market interface {
	// Holdings is what the owner's custodial address and linked wallets
	// hold (public on the ledger).
	Holdings(p edge.Principal) json.RawMessage
	// Transfer is the route for p with body and key: the answer's body
	// (the receipt, or the action waiting for the owner).
	Transfer(ctx context.Context, p edge.Principal, body []byte, key string) (json.RawMessage, error)
}

// transferArgs are create_transfer's arguments: the route's body and its
// Idempotency-Key.
type transferArgs struct {
	Key     string         `json:"key" jsonschema:"names this transfer across retries (Idempotency-Key)"`
	Request map[string]any `json:"request" jsonschema:"the body of POST /v1/assets/transfers: {intent: {collection, assetId, amount, from, to, nonce, deadline}, signature?}; from the owner's custodial address the realm signs once the transfer is decided"`
}

// body checks the arguments; the request goes through the route's own
// strict decoder when the tool runs.
func (in transferArgs) body() ([]byte, error) {
	if in.Key == "" || len(in.Key) > 255 {
		return nil, errors.New("key: name the transfer (1 to 255 characters); a retry with the same key gets the first answer")
	}
	if in.Request == nil {
		return nil, errors.New("request: the transfer request, as POST /v1/assets/transfers takes it")
	}
	return json.Marshal(in.Request)
}

func (t tools) listMyAssets(_ context.Context, _ *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, any, error) {
	return nil, map[string]json.RawMessage{"holdings": t.a.Market.Holdings(t.p)}, nil
}

func (t tools) createTransfer(ctx context.Context, _ *mcp.CallToolRequest, in transferArgs) (*mcp.CallToolResult, any, error) {
	body, err := in.body()
	if err != nil {
		return nil, nil, err
	}
	answer, err := t.a.Market.Transfer(ctx, t.p, body, in.Key)
	if err != nil {
		res, err := refused(err)
		return res, nil, err
	}
	return nil, answer, nil
}
