package realmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

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
