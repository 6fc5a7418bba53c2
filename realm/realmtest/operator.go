package realmtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// Operator is a signed-in avatar with roles, and the passkey it steps up
// with.
type Operator struct {
	*Client
	Auth *webauthntest.Authenticator
	ID   string
	Sess Session
}

// NewOperator registers an avatar on node n and gives it roles, as an
// administrator would.
func NewOperator(t testing.TB, n Node, name string, roles ...string) Operator {
	t.Helper()
	c := NewClient(t, n.URL())
	auth := webauthntest.New()
	sess := c.Register(auth, name)
	id, _ := sess.Avatar["id"].(string)
	if err := Probe(n).Avatars.SetRoles(context.Background(), id, roles); err != nil {
		t.Fatal(err)
	}
	return Operator{Client: c.With(sess.Token), Auth: auth, ID: id, Sess: sess}
}

// Digest asks the realm for the action digest of a twin command.
func (o Operator) Digest(path, key string, body any) string {
	o.T.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", o.Base+path+"/digest", bytes.NewReader(data))
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Authorization", "Bearer "+o.Token)
	resp, err := o.HTTP.Do(req)
	if err != nil {
		o.T.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Hash string `json:"hash"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		o.T.Fatalf("digest = %d %v", resp.StatusCode, err)
	}
	return out.Hash
}

// WaitTwinsLive waits until every simulated twin gateway of node n hears
// the revocation feed.
func WaitTwinsLive(t testing.TB, n Node) {
	t.Helper()
	Eventually(t, "every simulated gateway to hear the revocation feed", func() bool {
		for _, age := range Probe(n).GatewayFeedAges() {
			if age < 0 || age > time.Second {
				return false
			}
		}
		return true
	})
}

// IssueDelegation has the operator delegate to the agent holding key, as
// an owner does through the API: the grant's digest, a user-verified
// step-up bound to it, then the issue. It returns the token and the
// delegation's id.
func (o Operator) IssueDelegation(key ed25519.PublicKey, actions []string, resources []map[string]string) (token, id string) {
	o.T.Helper()
	grant := map[string]any{
		"agent_key": agents.EncodeAgentKey(key), "actions": actions, "resources": resources,
		"limits": map[string]any{"max_risk": "low"}, "expires_in": 3600,
	}
	var dg struct {
		Grant        json.RawMessage `json:"grant"`
		ActionDigest string          `json:"action_digest"`
	}
	o.Must("POST", "/v1/agents/delegations/digest", grant, &dg)
	if code, p := o.StepUp(o.Auth, dg.ActionDigest); code != http.StatusOK {
		o.T.Fatalf("step-up for a delegation = %d %+v", code, p)
	}
	var issued struct {
		Token      string `json:"token"`
		Delegation struct {
			ID string `json:"id"`
		} `json:"delegation"`
	}
	o.Must("POST", "/v1/agents/delegations", map[string]any{"grant": dg.Grant}, &issued)
	return issued.Token, issued.Delegation.ID
}
