package mcpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

// Path is where MCP is served (POST only: the server is stateless, so
// there is no stream to GET nor session to DELETE); MetadataPath the RFC
// 9728 metadata.
const (
	Path         = "/v1/mcp"
	MetadataPath = "/.well-known/oauth-protected-resource"
)

// maxTrail bounds my_audit_trail's answer.
const maxTrail = 100

// Scene is a scene as list_scenes shows it.
type Scene struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Decision is the realm's answer to one agent action.
type Decision struct {
	Allow    bool     `json:"allow"`
	Reason   string   `json:"reason,omitempty"`
	Policies []string `json:"policies"`
}

// Scenes knows the scenes the realm serves and decides an agent's
// JoinScene: its delegation, then the scene's Cedar policies, audited.
type Scenes interface {
	Scenes() []*scenes.Scene
	// DecideAgentJoin decides p's JoinScene on scene; an error is a
	// failure to decide (or the agent refused at its delegation as a
	// whole, such as revoked since it authenticated), never a deny.
	DecideAgentJoin(ctx context.Context, p edge.Principal, scene string) (policy.Decision, error)
	// GrantsAgent reports whether p's delegation grants action in scene,
	// so that listing never counts as an attempt.
	GrantsAgent(p edge.Principal, action, scene string) bool
}

// decideJoin is the realm's decision on p's JoinScene, as the tools
// answer it.
func (t tools) decideJoin(ctx context.Context, scene string) (Decision, error) {
	d, err := t.a.Scenes.DecideAgentJoin(ctx, t.p, scene)
	if err != nil {
		return Decision{}, err
	}
	if d.Policies == nil {
		d.Policies = []string{} // JSON says []
	}
	return Decision{Allow: d.Allow, Reason: d.Reason, Policies: d.Policies}, nil
}

// Trail reads the audit view (audit.View).
type Trail interface {
	Events(q audit.Query) []audit.Event
}

// Deps is what the API needs once the realm has started.
type Deps struct {
	Log    *slog.Logger
	Scenes Scenes
	Twins  Twins
	Market Market
	Trail  Trail
	// Presence is who is in each scene (the live edge).
	Presence Presence
	// Version is the realm's version, for the MCP implementation info.
	Version string
	// Base is the realm's public URL (the resource's identifier).
	Base func() *url.URL
}

// API serves MCP.
type API struct {
	edge *edge.Edge
	*Deps
	handler *mcp.StreamableHTTPHandler
}

// New makes the API; Routes may run before Bind.
func New(e *edge.Edge) *API {
	a := &API{edge: e}
	// Stateless: every request stands alone, so nothing ties a session
	// to a node, and the per-request server knows the agent the edge
	// authenticated for exactly that request.
	a.handler = mcp.NewStreamableHTTPHandler(a.serverFor, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	return a
}

// Bind gives the API what it needs, once, before the realm is ready.
func (a *API) Bind(deps Deps) error {
	if deps.Log == nil || deps.Scenes == nil || deps.Twins == nil || deps.Market == nil || deps.Trail == nil || deps.Presence == nil || deps.Base == nil {
		return errors.New("mcpapi: every dependency is required")
	}
	a.Deps = &deps
	return nil
}

// Routes registers MCP (agents only) and its resource metadata (public).
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/mcp", a.edge.AgentAuthed(a.serve))
	mux.HandleFunc("GET "+MetadataPath, a.edge.WhenReady(a.serveMetadata))
}

type principalKey struct{}

func (a *API) serve(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	a.handler.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), principalKey{}, p)))
}

// serverFor builds the MCP server of one request, its tools bound to the
// agent the edge authenticated. A server is a handful of maps: cheaper
// than any decision a tool makes.
func (a *API) serverFor(req *http.Request) *mcp.Server {
	p, ok := req.Context().Value(principalKey{}).(edge.Principal)
	if !ok || !p.IsAgent() {
		return nil // unreachable behind AgentAuthed; the SDK answers 400
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "zerorealm", Version: a.Version}, &mcp.ServerOptions{Logger: a.Log})
	t := tools{a: a, p: p, req: req}
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(s, &mcp.Tool{Name: "list_scenes", Annotations: readOnly,
		Description: "The scenes of the realm this agent may join now: its delegation grants JoinScene there and the scene's policies allow it (each an audited decision)."},
		t.listScenes)
	mcp.AddTool(s, &mcp.Tool{Name: "scene_access", Annotations: readOnly,
		Description: "Whether this agent may join a scene now, with the reason of a refusal. Asking for a scene outside the delegation is an out-of-scope attempt and counts against the agent's trust."},
		t.sceneAccess)
	mcp.AddTool(s, &mcp.Tool{Name: "scene_members", Annotations: readOnly,
		Description: "Who is in a scene now, as its members see them: each person, and each agent marked with the person it acts for (on_behalf_of) and, for a sub-agent, the agent that delegated to it. Allowed when this agent may join the scene (an audited decision); to be seen there itself, an agent joins over the realm WebSocket."},
		t.sceneMembers)
	mcp.AddTool(s, &mcp.Tool{Name: "twin_state", Annotations: readOnly,
		Description: "A twin with its actuators (envelope, risk, unit) and their last reported state, if this agent's delegation names the twin or one of its actuators and the scene's policies let it view the twin (an audited decision)."},
		t.twinState)
	mcp.AddTool(s, &mcp.Tool{Name: "command_actuator", Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(true)},
		Description: "Command an actuator of a twin (set a target, or stop), exactly as the realm's command route does: this agent's delegation (the actuator, commands per minute, the highest risk) and then the scene's policies decide, audited with the agent's chain; the realm signs a grant naming the chain and the twin's gateway carries it out and signs its answer. A high-risk command needs the owner's approval; a critical one is never an agent's. The same key returns the first answer."},
		t.commandActuator)
	mcp.AddTool(s, &mcp.Tool{Name: "list_my_assets", Annotations: readOnly,
		Description: "What this agent's owner holds: the items and balances of the owner's custodial address and linked wallets, with each address's next nonce."},
		t.listMyAssets)
	mcp.AddTool(s, &mcp.Tool{Name: "create_transfer", Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)},
		Description: "Transfer the owner's asset, exactly as the realm's transfer route does: this agent's delegation (the collection, the value per transfer and per day) and the scene's policies decide, audited with the agent's chain; above the delegation's auto-approval value the transfer waits for the owner's approval (status 202 in the answer's place: the waiting action). The same key returns the first answer."},
		t.createTransfer)
	mcp.AddTool(s, &mcp.Tool{Name: "my_audit_trail", Annotations: readOnly,
		Description: "This agent's own decisions from the realm's audit log, newest first (at most 100), each with the chain that authorized it."},
		t.myAuditTrail)
	return s
}

// metadata is RFC 9728's protected resource metadata of /v1/mcp.
func (a *API) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	base := a.Base()
	res := url.URL{Scheme: base.Scheme, Host: base.Host, Path: Path}
	// Public information, for any client that discovers the resource.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	edge.WriteJSON(w, http.StatusOK, &oauthex.ProtectedResourceMetadata{
		Resource: res.String(),
		// No authorization server: delegations are issued by the realm
		// itself, after the owner's passkey step-up (docs/agents.md).
		BearerMethodsSupported:        []string{"header"},
		ResourceName:                  "ZeroRealm MCP",
		ResourceDocumentation:         "https://zerorealm.dev/docs/agents",
		DPOPSigningAlgValuesSupported: []string{"EdDSA"},
		DPOPBoundAccessTokensRequired: true,
	})
}

type tools struct {
	a   *API
	p   edge.Principal
	req *http.Request
}

type noArgs struct{}

type scenesOut struct {
	Scenes []Scene `json:"scenes"`
}

func (t tools) listScenes(ctx context.Context, _ *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, scenesOut, error) {
	out := scenesOut{Scenes: []Scene{}}
	for _, sc := range t.a.Scenes.Scenes() {
		if !t.a.Scenes.GrantsAgent(t.p, scenes.ActionJoinScene, sc.ID) {
			continue
		}
		d, err := t.decideJoin(ctx, sc.ID)
		if err != nil {
			return nil, scenesOut{}, err
		}
		if d.Allow {
			out.Scenes = append(out.Scenes, Scene{ID: sc.ID, Name: sc.Name})
		}
	}
	return nil, out, nil
}

type sceneArgs struct {
	Scene string `json:"scene" jsonschema:"the scene's id"`
}

func (in sceneArgs) check() error {
	if in.Scene == "" || len(in.Scene) > 64 {
		return errors.New("scene: want a scene id")
	}
	return nil
}

type accessOut struct {
	Scene string `json:"scene"`
	Decision
}

// sceneAccess decides JoinScene; a refusal is a tool error carrying its
// reason, so the model reads why.
func (t tools) sceneAccess(ctx context.Context, _ *mcp.CallToolRequest, in sceneArgs) (*mcp.CallToolResult, accessOut, error) {
	if err := in.check(); err != nil {
		return nil, accessOut{}, err
	}
	d, err := t.decideJoin(ctx, in.Scene)
	if err != nil {
		return nil, accessOut{}, err
	}
	out := accessOut{Scene: in.Scene, Decision: d}
	if !d.Allow {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "refused: " + d.Reason}}}, out, nil
	}
	return nil, out, nil
}

type trailEvent struct {
	Time     time.Time `json:"time"`
	Action   string    `json:"action"`
	Resource string    `json:"resource"`
	Outcome  string    `json:"outcome"`
	Reasons  []string  `json:"reasons,omitempty"`
	Chain    string    `json:"chain,omitempty"`
}

type trailOut struct {
	Events []trailEvent `json:"events"`
}

// myAuditTrail reads the agent's own record: no Cedar action guards it,
// as a person's own audit trail needs none.
func (t tools) myAuditTrail(_ context.Context, _ *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, trailOut, error) {
	out := trailOut{Events: []trailEvent{}}
	for _, ev := range t.a.Trail.Events(audit.Query{Actor: t.p.Agent.ID, Limit: maxTrail}) {
		chain, _ := ev.Signals["chain"].(string)
		out.Events = append(out.Events, trailEvent{Time: ev.Time, Action: ev.Action, Resource: ev.Resource, Outcome: string(ev.Outcome), Reasons: ev.Reasons, Chain: chain})
	}
	return nil, out, nil
}

func ptr[T any](v T) *T { return &v }
