package realm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// dpopTransport is an agent's HTTP client under the MCP SDK's client: it
// adds the delegation token and a fresh RFC 9449 proof by signer to every
// request, and retries once with the nonce a use_dpop_nonce refusal gives.
type dpopTransport struct {
	signer ed25519.PrivateKey
	token  string
	mu     sync.Mutex
	nonce  string
}

func (d *dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
	}
	for attempt := 0; ; attempt++ {
		d.mu.Lock()
		nonce := d.nonce
		d.mu.Unlock()
		proof, err := agents.NewProof(d.signer, req.Method, req.URL.String(), d.token, nonce, time.Now())
		if err != nil {
			return nil, err
		}
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.Header.Set("Authorization", "DPoP "+d.token)
		r.Header.Set("DPoP", proof)
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			d.mu.Lock()
			d.nonce = n
			d.mu.Unlock()
			if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
				_ = resp.Body.Close()
				continue
			}
		}
		return resp, nil
	}
}

func connectMCP(t *testing.T, r *Realm, signer ed25519.PrivateKey, token string) (*mcp.ClientSession, error) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             r.URL() + "/v1/mcp",
		HTTPClient:           &http.Client{Transport: &dpopTransport{signer: signer, token: token}, Timeout: 10 * time.Second},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
}

// TestMCPAgentEndToEnd runs the Go MCP SDK's client as an agent against a
// real realm: it initializes and lists the tools; an allowed call
// succeeds; an out-of-scope one is refused with its reason; its own audit
// trail shows both with its chain; a stolen token without the key is
// refused; the protected resource metadata names DPoP.
func TestMCPAgentEndToEnd(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	owner := c.Register(webauthntest.New(), "mira")
	ownerID, _ := owner.Avatar["id"].(string)
	ag, chain := newAgent(t, r, ownerID, []string{agents.ActionJoinScene}, agents.Resource{Kind: agents.KindScene, ID: "foundry"})

	cs, err := connectMCP(t, r, ag.Key, chain.Token())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	ctx := context.Background()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	names := []string{}
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "list_scenes") || !strings.Contains(got, "my_audit_trail") || !strings.Contains(got, "scene_access") {
		t.Fatalf("tools: %s", got)
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_scenes", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("list_scenes: %v %+v", err, res)
	}
	var listed struct {
		Scenes []struct{ ID string } `json:"scenes"`
	}
	remarshal(t, res.StructuredContent, &listed)
	if len(listed.Scenes) != 1 || listed.Scenes[0].ID != "foundry" {
		t.Fatalf("list_scenes: %+v", listed)
	}

	// Out of scope: a delegation for twins only asks to join the scene.
	twinAgent, narrow := newAgent(t, r, ownerID, []string{agents.ActionViewTwin}, agents.Resource{Kind: agents.KindTwin, ID: "press-1"})
	cs2, err := connectMCP(t, r, twinAgent.Key, narrow.Token())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs2.Close()
	res, err = cs2.CallTool(ctx, &mcp.CallToolParams{Name: "scene_access", Arguments: map[string]any{"scene": "foundry"}})
	if err != nil || !res.IsError {
		t.Fatalf("scene_access out of scope: %v %+v", err, res)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(text, "out-of-scope") || !strings.Contains(text, "JoinScene") {
		t.Fatalf("out-of-scope refusal says %q", text)
	}
	eventually(t, "the refusal in the agent's own trail, with its chain", func() bool {
		res, err := cs2.CallTool(ctx, &mcp.CallToolParams{Name: "my_audit_trail", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			return false
		}
		var trail struct {
			Events []struct{ Action, Outcome, Chain string } `json:"events"`
		}
		remarshal(t, res.StructuredContent, &trail)
		return len(trail.Events) > 0 && trail.Events[0].Action == "JoinScene" && trail.Events[0].Outcome == "deny" && trail.Events[0].Chain == narrow.Path()
	})

	// A stolen token: the thief signs with its own key.
	if _, err := connectMCP(t, r, newAgentKey(t), chain.Token()); err == nil || !strings.Contains(err.Error(), http.StatusText(http.StatusUnauthorized)) {
		t.Fatalf("connect with a stolen token: %v, want 401", err)
	}

	var meta map[string]any
	if code := get(t, r.URL()+"/.well-known/oauth-protected-resource", &meta); code != 200 ||
		meta["resource"] != r.URL()+"/v1/mcp" || meta["dpop_bound_access_tokens_required"] != true {
		t.Fatalf("protected resource metadata: %d %v", code, meta)
	}
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}
