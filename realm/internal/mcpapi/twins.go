package mcpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/twin"
)

// Twins reads twins and commands their actuators for an agent along the
// very path of the twin routes (realm/internal/twins): the delegation,
// then the scene's Cedar policies, the grant with the agent's chain, the
// gateway, the audit, the Idempotency-Key.
type Twins interface {
	// State is GET /v1/twins/{twin}'s answer for p (ViewTwin, audited).
	State(ctx context.Context, p edge.Principal, twinID string) (json.RawMessage, error)
	// Command is POST /v1/twins/{twin}/actuators/{actuator}/commands for
	// p, made while serving req: the answer's body, whose status field
	// says what came of it.
	Command(req *http.Request, p edge.Principal, twinID, actuatorID, key string, cr twin.CommandRequest) (json.RawMessage, error)
}

// Refusal is a twin route's refusal of an agent's call, in the words the
// route answers with; a tool reports it as a tool error, for the model to
// read.
type Refusal struct{ Detail string }

func (r *Refusal) Error() string { return "refused: " + r.Detail }

// twinArgs are twin_state's arguments.
type twinArgs struct {
	Twin string `json:"twin" jsonschema:"the twin's id"`
}

func (in twinArgs) check() error {
	if !twin.ValidID(in.Twin) {
		return fmt.Errorf("twin: want a twin id (%s)", idRule)
	}
	return nil
}

const idRule = "1 to 64 of a-z, 0-9 and -"

// commandArgs are command_actuator's arguments: the route's path, its
// Idempotency-Key and its body.
type commandArgs struct {
	Twin     string   `json:"twin" jsonschema:"the twin's id"`
	Actuator string   `json:"actuator" jsonschema:"the actuator's id"`
	Key      string   `json:"key" jsonschema:"names this command across retries (Idempotency-Key): 1 to 64 of A-Z a-z 0-9 . _ : -"`
	Op       string   `json:"op" jsonschema:"set (move to value) or stop"`
	Value    *float64 `json:"value,omitempty" jsonschema:"the target, in the actuator's unit, within its envelope; for set only"`
	Reason   string   `json:"reason,omitempty" jsonschema:"why, for the audit"`
}

// request checks the arguments as the route checks its path and body: the
// body goes through the route's own parser.
func (in commandArgs) request() (twin.CommandRequest, error) {
	if !twin.ValidID(in.Twin) || !twin.ValidID(in.Actuator) {
		return twin.CommandRequest{}, fmt.Errorf("twin and actuator: want ids (%s)", idRule)
	}
	if in.Key == "" {
		return twin.CommandRequest{}, errors.New("key: name the command (1 to 64 of A-Z a-z 0-9 . _ : -); a retry with the same key gets the first answer")
	}
	body, err := json.Marshal(twin.CommandRequest{Op: twin.Op(in.Op), Value: in.Value, Reason: in.Reason})
	if err != nil {
		return twin.CommandRequest{}, fmt.Errorf("value: %w", err)
	}
	return twin.ParseCommandRequest(body)
}

// refused reports a refusal as a tool error carrying its reason, so the
// model reads why; anything else ends the call.
func refused(err error) (*mcp.CallToolResult, error) {
	var r *Refusal
	if errors.As(err, &r) {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: r.Error()}}}, nil
	}
	return nil, err
}

func (t tools) twinState(ctx context.Context, _ *mcp.CallToolRequest, in twinArgs) (*mcp.CallToolResult, any, error) {
	if err := in.check(); err != nil {
		return nil, nil, err
	}
	v, err := t.a.Twins.State(ctx, t.p, in.Twin)
	if err != nil {
		res, err := refused(err)
		return res, nil, err
	}
	return nil, v, nil
}

func (t tools) commandActuator(ctx context.Context, _ *mcp.CallToolRequest, in commandArgs) (*mcp.CallToolResult, any, error) {
	cr, err := in.request()
	if err != nil {
		return nil, nil, err
	}
	// The MCP request, for its id in the audit, with the tool's context.
	answer, err := t.a.Twins.Command(t.req.WithContext(ctx), t.p, in.Twin, in.Actuator, in.Key, cr)
	if err != nil {
		res, err := refused(err)
		return res, nil, err
	}
	return nil, answer, nil
}
