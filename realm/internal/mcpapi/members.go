package mcpapi

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Presence is who is in each scene, in the wire form of a joined
// snapshot's members (clients/PROTOCOL.md; live.Service.MembersJSON).
type Presence interface {
	MembersJSON(scene string) json.RawMessage
}

// Member is someone in a scene: a person, or an agent marked with whose
// authority it acts. For an agent, Avatar is the agent's id.
type Member struct {
	Avatar     string      `json:"avatar"`
	Name       string      `json:"name"`
	Zone       string      `json:"zone"`
	Kind       string      `json:"kind" jsonschema:"person or agent"`
	Agent      string      `json:"agent,omitempty"`
	OnBehalfOf *OnBehalfOf `json:"on_behalf_of,omitempty"`
}

// OnBehalfOf is the person an agent acts for, and how deep in that
// person's delegation chain it stands.
type OnBehalfOf struct {
	Avatar string `json:"avatar"`
	Handle string `json:"handle"`
	Depth  int    `json:"depth" jsonschema:"1 for the owner's own agent, more for a sub-agent"`
	Via    string `json:"via,omitempty" jsonschema:"for a sub-agent, the agent that delegated to it"`
}

type membersOut struct {
	Scene   string   `json:"scene"`
	Members []Member `json:"members"`
}

// sceneMembers shows who is in a scene to an agent that may join it: what
// a member of the scene sees. The decision is JoinScene's, audited; a
// refusal is a tool error with its reason.
func (t tools) sceneMembers(ctx context.Context, _ *mcp.CallToolRequest, in sceneArgs) (*mcp.CallToolResult, membersOut, error) {
	if err := in.check(); err != nil {
		return nil, membersOut{}, err
	}
	d, err := t.decideJoin(ctx, in.Scene)
	if err != nil {
		return nil, membersOut{}, err
	}
	if !d.Allow {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "refused: " + d.Reason}}}, membersOut{}, nil
	}
	out := membersOut{Scene: in.Scene, Members: []Member{}}
	if err := json.Unmarshal(t.a.Presence.MembersJSON(in.Scene), &out.Members); err != nil {
		return nil, membersOut{}, fmt.Errorf("scene members: %w", err)
	}
	return nil, out, nil
}
