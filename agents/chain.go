package agents

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/ethsig"
)

// Draft is a root block ready to sign: the realm shows the owner what it
// grants, the owner confirms Digest with a passkey step-up, and only then
// does the node's key sign it.
type Draft struct {
	Grant   Grant
	Digest  [32]byte
	payload []byte
}

// PrepareRoot checks g as a root block issued by the key at issuer and
// returns its digest. It sets Version, Issuer and, when empty, ID; times
// are kept to the second. The same g and issuer always give the same
// digest, so a realm node that did not prepare the draft can sign it
// after the owner's step-up.
func PrepareRoot(g Grant, issuer common.Address) (*Draft, error) {
	g.Version = grantVersion
	g.Issuer = issuer.Hex()
	if g.ID == "" {
		g.ID = NewDelegationID()
	}
	g.IssuedAt, g.ExpiresAt = g.IssuedAt.UTC().Truncate(time.Second), g.ExpiresAt.UTC().Truncate(time.Second)
	g.Actions, g.Resources = slices.Clone(g.Actions), slices.Clone(g.Resources)
	if err := g.validate(true); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(&g)
	if err != nil {
		return nil, fmt.Errorf("agents: encode root: %w", err)
	}
	return &Draft{Grant: g, Digest: blockDigest(payload), payload: payload}, nil
}

// Sign issues the root. signer must be the key the draft names.
func (d *Draft) Sign(signer RootSigner) (*Chain, error) {
	if got := signer.Address().Hex(); got != d.Grant.Issuer {
		return nil, fmt.Errorf("agents: draft names issuer %s, signer is %s", d.Grant.Issuer, got)
	}
	sig, err := signer.Sign(common.Hash(d.Digest))
	if err != nil {
		return nil, fmt.Errorf("agents: sign root: %w", err)
	}
	blocks := []Block{{Grant: d.Grant, Payload: d.payload, Signature: sig[:], Digest: d.Digest}}
	return &Chain{Blocks: blocks, token: encodeToken(blocks)}, nil
}

// Derive is what a holder does offline to hand part of its delegation to
// a sub-agent: child must narrow parent's leaf (fewer actions and
// resources, lower limits, no later expiry), and holder must be the key
// the leaf names. Derive sets Version, Parent, ParentDigest and, when
// empty, ID. The verifier applies the same rules, so a widening Derive
// refuses is one the realm would refuse too.
func Derive(parent *Chain, holder ed25519.PrivateKey, child Grant) (*Chain, error) {
	if len(parent.Blocks) >= MaxChainDepth {
		return nil, deny(ReasonTooDeep, "the chain has %d blocks already, the most there may be", len(parent.Blocks))
	}
	leaf := parent.Blocks[len(parent.Blocks)-1]
	if pub, ok := holder.Public().(ed25519.PublicKey); !ok || EncodeAgentKey(pub) != leaf.Grant.Agent {
		return nil, deny(ReasonSignature, "the deriving key is not the holder of block %s", leaf.Grant.ID)
	}
	child.Version = grantVersion
	child.Parent, child.ParentDigest, child.Issuer = leaf.Grant.ID, digestHex(leaf.Digest), ""
	if child.ID == "" {
		child.ID = NewDelegationID()
	}
	child.IssuedAt, child.ExpiresAt = child.IssuedAt.UTC().Truncate(time.Second), child.ExpiresAt.UTC().Truncate(time.Second)
	child.Actions, child.Resources = slices.Clone(child.Actions), slices.Clone(child.Resources)
	if err := child.validate(false); err != nil {
		return nil, err
	}
	if err := child.narrows(&leaf.Grant); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(&child)
	if err != nil {
		return nil, fmt.Errorf("agents: encode block: %w", err)
	}
	d := blockDigest(payload)
	blocks := append(slices.Clone(parent.Blocks), Block{Grant: child, Payload: payload, Signature: ed25519.Sign(holder, d[:]), Digest: d})
	return &Chain{Blocks: blocks, token: encodeToken(blocks)}, nil
}

// Verifier checks chains against the realm keys it trusts. Safe for
// concurrent use.
type Verifier struct {
	roots Roots
	// skew is how far a block's iat may lie in the verifier's future.
	skew time.Duration

	// verified remembers tokens whose signatures and chain rules held, by
	// their exact text: an agent presents the same token with every
	// request, and its signatures cost more than the rest of a decision.
	// The key is the string the chain keeps anyway (Parse keeps the
	// token it read), so it costs no memory of its own, and a lookup hashes it with the map's
	// hash rather than SHA-256 (a few microseconds a request for a 1 KB
	// token). What changes with time or configuration (validity, whether
	// the root's key is still trusted) is checked again on every use.
	mu       sync.Mutex
	verified map[string]*verifiedChain
}

type verifiedChain struct {
	chain  *Chain
	signer common.Address
}

// maxVerified bounds the verified-token cache; when full it is emptied,
// which costs the next requests one full verification each.
const maxVerified = 8192

// DefaultClockSkew is how far apart the clocks of the realm nodes and of
// the agents' machines may be.
const DefaultClockSkew = 30 * time.Second

// NewVerifier trusts the roots signed by roots' keys; skew 0 means
// DefaultClockSkew.
func NewVerifier(roots Roots, skew time.Duration) *Verifier {
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	return &Verifier{roots: roots, skew: skew, verified: map[string]*verifiedChain{}}
}

// VerifyToken parses and verifies token at now, as Parse and Verify do,
// with the signatures of a token seen before not checked again. The
// returned chain is shared: callers must not change it.
func (v *Verifier) VerifyToken(token string, now time.Time) (*Chain, error) {
	if len(token) > MaxTokenLen {
		return nil, deny(ReasonMalformed, "token of %d bytes: at most %d", len(token), MaxTokenLen)
	}
	v.mu.Lock()
	hit := v.verified[token]
	v.mu.Unlock()
	if hit != nil {
		if !v.roots.Trusted(hit.signer) {
			return nil, deny(ReasonUntrustedRoot, "root %s is signed by %s, no longer a key of this realm", hit.chain.Root().ID, hit.signer.Hex())
		}
		if err := v.checkTimes(hit.chain, now); err != nil {
			return nil, err
		}
		return hit.chain, nil
	}
	c, err := Parse(token)
	if err != nil {
		return nil, err
	}
	if err := v.Verify(c, now); err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerified {
		clear(v.verified)
	}
	v.verified[c.token] = &verifiedChain{chain: c, signer: common.HexToAddress(c.Root().Issuer)}
	v.mu.Unlock()
	return c, nil
}

// Verify checks the whole chain at now: the root's signature by a trusted
// realm key, each block's signature by its parent's holder, each block
// naming its parent, narrowing it, and being valid at now. Every refusal
// is a *DenyError with the reason. Revocation is checked apart
// (Revocations), because it needs the store.
func (v *Verifier) Verify(c *Chain, now time.Time) error {
	if c == nil || len(c.Blocks) == 0 {
		return deny(ReasonMalformed, "empty chain")
	}
	if len(c.Blocks) > MaxChainDepth {
		return deny(ReasonTooDeep, "%d blocks: at most %d", len(c.Blocks), MaxChainDepth)
	}
	root := &c.Blocks[0]
	if err := root.Grant.validate(true); err != nil {
		return err
	}
	var sig ethsig.Signature
	if len(root.Signature) != len(sig) {
		return deny(ReasonSignature, "root signature of %d bytes", len(root.Signature))
	}
	copy(sig[:], root.Signature)
	signer, err := ethsig.Recover(common.Hash(root.Digest), sig)
	if err != nil {
		return deny(ReasonSignature, "root %s: %v", root.Grant.ID, err)
	}
	if signer.Hex() != root.Grant.Issuer {
		return deny(ReasonSignature, "root %s names issuer %s but is signed by %s", root.Grant.ID, root.Grant.Issuer, signer.Hex())
	}
	if !v.roots.Trusted(signer) {
		return deny(ReasonUntrustedRoot, "root %s is signed by %s, not a key of this realm", root.Grant.ID, signer.Hex())
	}
	for i := 1; i < len(c.Blocks); i++ {
		parent, child := &c.Blocks[i-1], &c.Blocks[i]
		if err := child.Grant.validate(false); err != nil {
			return err
		}
		if child.Grant.Parent != parent.Grant.ID || child.Grant.ParentDigest != digestHex(parent.Digest) {
			return deny(ReasonBrokenChain, "block %d (%s) does not name block %d (%s) as its parent", i, child.Grant.ID, i-1, parent.Grant.ID)
		}
		for j := range i {
			if c.Blocks[j].Grant.ID == child.Grant.ID {
				return deny(ReasonBrokenChain, "id %s appears twice in the chain", child.Grant.ID)
			}
		}
		holder, _ := decodeAgentKey(parent.Grant.Agent)
		if !ed25519.Verify(holder, child.Digest[:], child.Signature) {
			return deny(ReasonSignature, "block %d (%s) is not signed by the holder of its parent %s", i, child.Grant.ID, parent.Grant.ID)
		}
		if err := child.Grant.narrows(&parent.Grant); err != nil {
			return err
		}
	}
	return v.checkTimes(c, now)
}

// checkTimes checks that every block of a verified chain is valid at now.
func (v *Verifier) checkTimes(c *Chain, now time.Time) error {
	for i := range c.Blocks {
		g := &c.Blocks[i].Grant
		if g.IssuedAt.After(now.Add(v.skew)) {
			return deny(ReasonNotYetValid, "block %s is dated %s, in the future", g.ID, g.IssuedAt.Format(time.RFC3339))
		}
	}
	// Narrowing makes the leaf's expiry the chain's.
	if leaf := c.Leaf(); !now.Before(leaf.ExpiresAt) {
		return deny(ReasonExpired, "delegation %s expired at %s", leaf.ID, leaf.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}
