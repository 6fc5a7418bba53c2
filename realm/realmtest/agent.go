package realmtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
)

// Agent is an agent as a third party would write one: it holds its
// Ed25519 key and its delegation token, signs an RFC 9449 proof for every
// request and retries once with the nonce a use_dpop_nonce refusal gives.
type Agent struct {
	T     testing.TB
	Base  string
	Key   ed25519.PrivateKey
	Token string
	Nonce string
	HTTP  *http.Client
	// LastProof is the proof of the last request sent, to replay it.
	LastProof string
}

// AgentAnswer is a node's answer to an agent.
type AgentAnswer struct {
	Status  int
	Header  http.Header
	Problem edge.Problem
	Body    []byte
}

// NewAgentKey is a fresh agent key.
func NewAgentKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewAgentClient is the agent holding key and chain's token, speaking to
// the node at url.
func NewAgentClient(t testing.TB, url string, key ed25519.PrivateKey, chain *agents.Chain) *Agent {
	return &Agent{T: t, Base: url, Key: key, Token: chain.Token(), HTTP: &http.Client{Timeout: 20 * time.Second}}
}

// IssueDelegation makes a root delegation for owner, limited to low risk,
// as node n does once the owner's step-up confirmed it.
func IssueDelegation(t testing.TB, n Node, owner string, agent ed25519.PrivateKey, actions []string, resources []agents.Resource, iat time.Time, life time.Duration) *agents.Chain {
	t.Helper()
	return IssueDelegationWithin(t, n, owner, agent, actions, resources, agents.Limits{MaxRisk: agents.RiskLow}, iat, life)
}

// IssueDelegationWithin is IssueDelegation with the delegation's limits:
// signed by node n's active ring key.
func IssueDelegationWithin(t testing.TB, n Node, owner string, agent ed25519.PrivateKey, actions []string, resources []agents.Resource, limits agents.Limits, iat time.Time, life time.Duration) *agents.Chain {
	t.Helper()
	signer := agents.KeySigner{Key: Probe(n).RingKey()}
	d, err := agents.PrepareRoot(agents.Grant{
		Owner: owner, Agent: agents.EncodeAgentKey(agent.Public().(ed25519.PublicKey)),
		Actions: actions, Resources: resources,
		Limits:   limits,
		IssuedAt: iat, ExpiresAt: iat.Add(life),
	}, signer.Address())
	if err != nil {
		t.Fatalf("PrepareRoot: %v", err)
	}
	c, err := d.Sign(signer)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return c
}

// NewAgent is a fresh agent of owner with a low-risk delegation issued a
// minute ago for an hour, and its HTTP client.
func NewAgent(t testing.TB, n Node, owner string, actions []string, resources ...agents.Resource) (*Agent, *agents.Chain) {
	t.Helper()
	key := NewAgentKey(t)
	chain := IssueDelegation(t, n, owner, key, actions, resources, time.Now().Add(-time.Minute), time.Hour)
	return NewAgentClient(t, n.URL(), key, chain), chain
}

// TraderLimits are the delegation of the market tests' trading agent:
// 500 per transfer, 600 a day, above 100 its owner approves.
var TraderLimits = agents.Limits{TransferValue: 500, DailyValue: 600, AutoApproveValue: 100, MaxRisk: agents.RiskLow}

// NewTrader is an agent of owner that may transfer the owner's gems,
// with TraderLimits, and its client.
func NewTrader(t testing.TB, n Node, owner string) (*Agent, *agents.Chain) {
	t.Helper()
	return NewTraderWith(t, n, owner, TraderLimits, "gems")
}

// NewTraderWith is an agent of owner that may transfer the owner's assets
// of collection, within limits, for an hour from a minute ago.
func NewTraderWith(t testing.TB, n Node, owner string, limits agents.Limits, collection string) (*Agent, *agents.Chain) {
	t.Helper()
	key := NewAgentKey(t)
	iat := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	chain := IssueDelegationWithin(t, n, owner, key, []string{agents.ActionTransferAsset},
		[]agents.Resource{{Kind: agents.KindCollection, ID: collection}}, limits, iat, time.Hour)
	return NewAgentClient(t, n.URL(), key, chain), chain
}

// AgentTransfer is the body of an agent's transfer from the owner's
// custodial address: no signature, the realm signs once it is decided.
func AgentTransfer(coll string, amount uint64, from, to common.Address, nonce uint64) map[string]any {
	return map[string]any{"intent": Intent(coll, "", amount, from, to, nonce, DeadlineIn(time.Hour))}
}

// Send sends a request with the given proof, once.
func (c *Agent) Send(method, path, proof string) AgentAnswer {
	return c.SendBody(method, path, proof, nil, nil)
}

// SendBody is Send with a JSON body and more headers.
func (c *Agent) SendBody(method, path, proof string, body []byte, header http.Header) AgentAnswer {
	c.T.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		c.T.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "DPoP "+c.Token)
	req.Header.Set("DPoP", proof)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := AgentAnswer{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if resp.StatusCode >= 300 {
		_ = json.Unmarshal(raw, &out.Problem)
	}
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		c.Nonce = n
	}
	return out
}

// ProofBy signs a proof for method and path with key (the agent's, or a
// thief's).
func (c *Agent) ProofBy(key ed25519.PrivateKey, method, path string) string {
	c.T.Helper()
	p, err := agents.NewProof(key, method, c.Base+path, c.Token, c.Nonce, time.Now())
	if err != nil {
		c.T.Fatal(err)
	}
	return p
}

// Do sends a request with a fresh proof, and again with the node's nonce
// when the first is refused for want of one.
func (c *Agent) Do(method, path string, out any) AgentAnswer {
	c.T.Helper()
	return c.DoBody(method, path, nil, nil, out)
}

// DoBody is Do with a JSON body and more headers.
func (c *Agent) DoBody(method, path string, body []byte, header http.Header, out any) AgentAnswer {
	c.T.Helper()
	for range 2 {
		c.LastProof = c.ProofBy(c.Key, method, path)
		a := c.SendBody(method, path, c.LastProof, body, header)
		if a.Status == http.StatusUnauthorized && a.Problem.Type == edge.ProblemBase+edge.TypeDPoPNonce {
			continue
		}
		if a.Status < 300 && out != nil {
			if err := json.Unmarshal(a.Body, out); err != nil {
				c.T.Fatalf("%s %s: %v in %s", method, path, err, a.Body)
			}
		}
		return a
	}
	c.T.Fatalf("%s %s: still asked for a nonce after sending one", method, path)
	return AgentAnswer{}
}

// Post is Do with body sent as JSON.
func (c *Agent) Post(method, path string, body any, out any) AgentAnswer {
	c.T.Helper()
	data, _ := json.Marshal(body)
	return c.DoBody(method, path, data, nil, out)
}

// Command posts a twin command as the agent, under an Idempotency-Key.
func (c *Agent) Command(path, key string, value float64) (AgentAnswer, command.Answer) {
	c.T.Helper()
	body, _ := json.Marshal(map[string]any{"op": "set", "value": value, "reason": "agent test"})
	var answer command.Answer
	a := c.DoBody("POST", path, body, http.Header{"Idempotency-Key": {key}}, &answer)
	return a, answer
}
