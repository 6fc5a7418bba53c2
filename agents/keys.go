package agents

import (
	"crypto/ecdsa"
	"crypto/rand"
	"slices"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/internal/ethsig"
)

// RootSigner signs the root block of a delegation: the realm node's key
// ring, after the owner confirmed the root's digest with a step-up. The
// key is the secp256k1 key that signs receipts and command grants, so a
// gateway that pinned the node's address can check a chain too.
type RootSigner interface {
	Address() common.Address
	Sign(digest common.Hash) (ethsig.Signature, error)
}

// KeySigner is a RootSigner over a key in memory.
type KeySigner struct{ Key *ecdsa.PrivateKey }

// Address is the key's Ethereum address.
func (s KeySigner) Address() common.Address { return crypto.PubkeyToAddress(s.Key.PublicKey) }

// Sign signs digest.
func (s KeySigner) Sign(digest common.Hash) (ethsig.Signature, error) {
	return ethsig.Sign(digest, s.Key)
}

// Roots says which realm keys may sign a root block: the active key of
// every node and, during a rotation, the keys it replaces.
type Roots interface {
	Trusted(addr common.Address) bool
}

// RootSet is a Roots that can change while it is read, as keys rotate.
type RootSet struct {
	mu    sync.RWMutex
	addrs []common.Address
}

// NewRootSet trusts addrs.
func NewRootSet(addrs ...common.Address) *RootSet {
	return &RootSet{addrs: slices.Clone(addrs)}
}

// Trusted reports whether addr is in the set.
func (s *RootSet) Trusted(addr common.Address) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Contains(s.addrs, addr)
}

// Set replaces the trusted keys.
func (s *RootSet) Set(addrs ...common.Address) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs = slices.Clone(addrs)
}

// validAddress accepts only the EIP-55 checksum form, the one the realm
// writes, so that one key has one spelling in a block.
func validAddress(s string) bool {
	if !common.IsHexAddress(s) || len(s) != 42 {
		return false
	}
	return common.HexToAddress(s).Hex() == s
}

// randRead fills b from the system's random source; crypto/rand never
// fails on the systems Go supports (it panics rather than return short).
func randRead(b []byte) { _, _ = rand.Read(b) }
