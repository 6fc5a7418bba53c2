package agents

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// The wire form of a delegation is its blocks, root first:
//
//	zrd1~<payload>.<signature>~<payload>.<signature>...
//
// each part base64url without padding; a payload is a Grant as JSON. The
// alphabet is RFC 9110's token68, so a delegation travels as it is in an
// Authorization header ("DPoP zrd1~...").
const tokenPrefix = "zrd1"

// Bounds on what Parse reads: a chain deeper than MaxChainDepth is
// refused, and so is a token longer than MaxTokenLen, before it is decoded.
const (
	MaxChainDepth = 8
	MaxTokenLen   = 16 << 10
)

// digestContext separates a block's digest from every other SHA-256 the
// realm computes, so that no other signed document can pass for a block.
const digestContext = "zerorealm delegation v1\n"

// Block is one signed grant of a chain.
type Block struct {
	Grant     Grant
	Payload   []byte   // the exact JSON that was signed
	Signature []byte   // 65-byte secp256k1 for the root, 64-byte Ed25519 below
	Digest    [32]byte // what the signature signs, and what the owner's step-up confirms for a root
}

// Chain is a delegation: the root the realm issued and every block derived
// from it. The last block's holder is the agent that presents it. A Chain
// from Parse is well-formed but not verified: see Verifier.
type Chain struct {
	Blocks []Block
	token  string

	// memo holds what is derived from the blocks, computed once: a
	// verified chain is kept per token and asked for the same on every
	// request of its agent.
	memoOnce sync.Once
	memo     chainMemo
}

type chainMemo struct {
	key    ed25519.PublicKey
	id     string
	agents []string
	ids    []string
	path   string
	ath    string

	auditOnce sync.Once
	audit     auditParts

	// What Cedar reads of the chain on every action, converted once:
	// context.agent's chain, delegations, limits and owner, and the
	// principal's chain and delegations.
	cedarOnce sync.Once
	cedar     chainCedar

	// trust is what Cedar reads of the agent's trust, for the last trust
	// it was asked with (see trustValues).
	trust atomic.Pointer[trustValues]
}

func (c *Chain) derived() *chainMemo {
	c.memoOnce.Do(func() {
		m := &c.memo
		m.key, _ = decodeAgentKey(c.Leaf().Agent)
		m.id = AgentID(m.key)
		m.agents = make([]string, len(c.Blocks))
		m.ids = make([]string, len(c.Blocks))
		var p strings.Builder
		p.WriteString(c.Owner())
		for i := range c.Blocks {
			k, _ := decodeAgentKey(c.Blocks[i].Grant.Agent)
			m.agents[i], m.ids[i] = AgentID(k), c.Blocks[i].Grant.ID
			p.WriteString(" > " + m.agents[i] + " (" + m.ids[i] + ")")
		}
		m.path = p.String()
		m.ath = TokenHash(c.token)
	})
	return &c.memo
}

func blockDigest(payload []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(digestContext))
	h.Write(payload)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Token is the chain's wire form.
func (c *Chain) Token() string { return c.token }

// Leaf is the last block's grant: what the presenting agent may do.
func (c *Chain) Leaf() *Grant { return &c.Blocks[len(c.Blocks)-1].Grant }

// Root is the first block's grant, the one the owner confirmed.
func (c *Chain) Root() *Grant { return &c.Blocks[0].Grant }

// Owner is the avatar every block acts for.
func (c *Chain) Owner() string { return c.Blocks[0].Grant.Owner }

// AgentKey is the key the presenting agent must prove it holds.
func (c *Chain) AgentKey() ed25519.PublicKey { return c.derived().key }

// AgentID is the presenting agent's id.
func (c *Chain) AgentID() string { return c.derived().id }

// Agents are the chain's holders' ids, root first: which agents the owner's
// authority went through.
func (c *Chain) Agents() []string { return slices.Clone(c.derived().agents) }

// IDs are the chain's delegation ids, root first.
func (c *Chain) IDs() []string { return slices.Clone(c.derived().ids) }

// tokenHash is the ath a proof for this chain's token names.
func (c *Chain) tokenHash() string { return c.derived().ath }

func encodeToken(blocks []Block) string {
	var b strings.Builder
	b.WriteString(tokenPrefix)
	for _, bl := range blocks {
		b.WriteByte('~')
		b.WriteString(base64.RawURLEncoding.EncodeToString(bl.Payload))
		b.WriteByte('.')
		b.WriteString(base64.RawURLEncoding.EncodeToString(bl.Signature))
	}
	return b.String()
}

// Parse reads a delegation's wire form and checks each block on its own
// (syntax, fields, lifetime, never critical). It verifies no signature
// and no chain rule: Verifier.Verify does. Every error is a *DenyError.
func Parse(token string) (*Chain, error) {
	if len(token) > MaxTokenLen {
		return nil, deny(ReasonMalformed, "token of %d bytes: at most %d", len(token), MaxTokenLen)
	}
	rest, ok := strings.CutPrefix(token, tokenPrefix+"~")
	if !ok {
		return nil, deny(ReasonMalformed, "not a delegation: want %s~ and its blocks", tokenPrefix)
	}
	parts := strings.Split(rest, "~")
	if len(parts) > MaxChainDepth {
		return nil, deny(ReasonTooDeep, "%d blocks: at most %d", len(parts), MaxChainDepth)
	}
	c := &Chain{Blocks: make([]Block, len(parts)), token: token}
	for i, part := range parts {
		p64, s64, ok := strings.Cut(part, ".")
		if !ok {
			return nil, deny(ReasonMalformed, "block %d: want payload.signature", i)
		}
		b := &c.Blocks[i]
		var err error
		if b.Payload, err = base64.RawURLEncoding.Strict().DecodeString(p64); err != nil {
			return nil, deny(ReasonMalformed, "block %d payload: not base64url without padding", i)
		}
		if b.Signature, err = base64.RawURLEncoding.Strict().DecodeString(s64); err != nil {
			return nil, deny(ReasonMalformed, "block %d signature: not base64url without padding", i)
		}
		want := ed25519.SignatureSize
		if i == 0 {
			want = 65
		}
		if len(b.Signature) != want {
			return nil, deny(ReasonMalformed, "block %d signature of %d bytes: want %d", i, len(b.Signature), want)
		}
		if err := decodeGrant(b.Payload, &b.Grant); err != nil {
			return nil, deny(ReasonMalformed, "block %d: %v", i, err)
		}
		if err := b.Grant.validate(i == 0); err != nil {
			return nil, err
		}
		b.Digest = blockDigest(b.Payload)
	}
	return c, nil
}

// decodeGrant decodes strictly: one JSON object, valid UTF-8, no member
// twice and none unknown, so that what the signer meant and what the
// verifier reads cannot differ.
func decodeGrant(payload []byte, g *Grant) error {
	if err := strictjson.Check(payload); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	return dec.Decode(g)
}

// digestHex is the form ParentDigest names a block's digest in.
func digestHex(d [32]byte) string { return hex.EncodeToString(d[:]) }
