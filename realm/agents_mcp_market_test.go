package realm

import (
	"context"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zerorealm/zerorealm/agents/approval"
)

// mcpAgent connects the MCP SDK's client as the agent, closed with the
// test, and a caller of its tools that fails the test on a protocol
// error (a tool's refusal is a result with isError).
func mcpAgent(t *testing.T, r *Realm, ag *agentClient, token string) (*mcp.ClientSession, func(name string, args map[string]any) *mcp.CallToolResult) {
	t.Helper()
	cs, err := connectMCP(t, r, ag.Key, token)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, func(name string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
}

// TestMCPMarketTools runs the Go MCP SDK's client as a trading agent:
// list_my_assets shows its owner's custodial gems; create_transfer moves
// some through the transfer route's own path (a receipt that verifies),
// waits for the owner above the auto-approval value, and is refused with
// its reason out of its delegation.
func TestMCPMarketTools(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	ownerID := ada.Sess.Avatar["id"].(string)
	custodial := custodialWith(t, r, ada, 2000)
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	ag, chain := newTrader(t, r, ownerID)
	cs, call := mcpAgent(t, r, ag, chain.Token())
	ctx := context.Background()

	var held struct {
		Holdings []struct {
			Address   string `json:"address"`
			Custodial bool   `json:"custodial"`
			Balances  []struct {
				Collection string `json:"collection"`
				Balance    string `json:"balance"`
			} `json:"balances"`
		} `json:"holdings"`
	}
	res := call("list_my_assets", map[string]any{})
	remarshal(t, res.StructuredContent, &held)
	if res.IsError || len(held.Holdings) == 0 || !held.Holdings[0].Custodial || held.Holdings[0].Address != custodial.Hex() ||
		len(held.Holdings[0].Balances) != 1 || held.Holdings[0].Balances[0].Balance != "2000" {
		t.Fatalf("list_my_assets = %+v", held)
	}

	var tr transferReply
	res = call("create_transfer", map[string]any{"key": "mcp-t1", "request": agentTransfer("gems", 50, custodial, bob, 1)})
	remarshal(t, res.StructuredContent, &tr)
	if res.IsError || tr.Digest == "" {
		t.Fatalf("create_transfer of 50 = %+v %v", tr, res.Content)
	}
	verifyReceipt(t, r, tr.Receipt)
	if got, _ := balanceOf(r, "gems", bob); got != 50 {
		t.Fatalf("bob holds %d gems, want 50", got)
	}

	var waiting approval.View
	res = call("create_transfer", map[string]any{"key": "mcp-t2", "request": agentTransfer("gems", 300, custodial, bob, 2)})
	remarshal(t, res.StructuredContent, &waiting)
	if res.IsError || waiting.State != approval.StatePending || waiting.Digest == "" {
		t.Fatalf("create_transfer of 300 = %+v, want it waiting for the owner", waiting)
	}

	res = call("create_transfer", map[string]any{"key": "mcp-t3", "request": agentTransfer("gems", 501, custodial, bob, 3)})
	if !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "over-limit") {
		t.Fatalf("create_transfer of 501 = %v, want a tool error with over-limit", res.Content)
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_transfer", Arguments: map[string]any{"key": "", "request": map[string]any{}}}); err == nil && !res.IsError {
		t.Fatal("create_transfer without a key accepted")
	}
}
