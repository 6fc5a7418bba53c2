package eip712

import (
	"encoding/binary"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TypeHash is keccak256 of an encoded type string, e.g.
// "Transfer(string collection,...)" followed by the types it references.
func TypeHash(typeString string) common.Hash { return crypto.Keccak256Hash([]byte(typeString)) }

// Domain is an EIP712Domain. EIP-712 leaves out the fields a domain does
// not use; here a zero ChainID or VerifyingContract is left out (no chain
// has id 0, and the zero address verifies nothing).
type Domain struct {
	Name              string
	Version           string
	ChainID           uint64
	VerifyingContract common.Address
}

// TypeString is the domain's encoded type: only the fields it uses.
func (d Domain) TypeString() string {
	s := "EIP712Domain(string name,string version"
	if d.ChainID != 0 {
		s += ",uint256 chainId"
	}
	if d.VerifyingContract != (common.Address{}) {
		s += ",address verifyingContract"
	}
	return s + ")"
}

// Separator is the domain separator, hashStruct(domain).
func (d Domain) Separator() common.Hash {
	s := New(TypeHash(d.TypeString())).String(d.Name).String(d.Version)
	if d.ChainID != 0 {
		s.Uint64(d.ChainID)
	}
	if d.VerifyingContract != (common.Address{}) {
		s.Address(d.VerifyingContract)
	}
	return s.Hash()
}

// Struct builds encodeData(s) = typeHash || enc(member)... for one message,
// one 32-byte word per member, and ends with Hash or Digest, which return
// it to its pool: a Struct must not be used after either.
type Struct struct {
	buf     []byte
	hasher  crypto.KeccakState
	scratch []byte
	// sumOut receives each hash: the hasher is an interface, so a local
	// array passed to it would be moved to the heap on every call.
	sumOut [32]byte
}

var structs = sync.Pool{New: func() any {
	return &Struct{buf: make([]byte, 0, 32*16), hasher: crypto.NewKeccakState(), scratch: make([]byte, 0, 256)}
}}

// New starts the encoding of a message of the type whose hash is typeHash.
func New(typeHash common.Hash) *Struct {
	s := structs.Get().(*Struct)
	s.buf = append(s.buf[:0], typeHash[:]...)
	return s
}

// sum appends keccak256(data) to out.
func (s *Struct) sum(out []byte, data []byte) []byte {
	s.hasher.Reset()
	s.hasher.Write(data)
	s.hasher.Read(s.sumOut[:])
	return append(out, s.sumOut[:]...)
}

// String encodes a string member: its keccak256, remembered for strings
// that repeat from one message to the next.
func (s *Struct) String(v string) *Struct {
	if h, ok := stringHashes.get(v); ok {
		s.buf = append(s.buf, h[:]...)
		return s
	}
	s.UniqueString(v)
	if len(v) <= maxCachedString {
		stringHashes.put(v, [32]byte(s.buf[len(s.buf)-32:]))
	}
	return s
}

// UniqueString is String for a string unlikely to be seen again (an
// idempotency key, an asset id), which would only push useful entries out
// of the cache.
func (s *Struct) UniqueString(v string) *Struct {
	s.scratch = append(s.scratch[:0], v...)
	s.buf = s.sum(s.buf, s.scratch)
	return s
}

// The cache of string hashes is emptied when it reaches maxCachedStrings,
// so strings from forged messages can cost at most a refill, never
// unbounded memory.
const (
	maxCachedStrings = 4096
	maxCachedString  = 128
)

type hashCache struct {
	mu sync.RWMutex
	m  map[string][32]byte
}

var stringHashes = hashCache{m: map[string][32]byte{}}

func (c *hashCache) get(s string) ([32]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	h, ok := c.m[s]
	return h, ok
}

func (c *hashCache) put(s string, h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedStrings {
		clear(c.m)
	}
	c.m[s] = h
}

// Word encodes a bytes32 member, or a nested struct's hash.
func (s *Struct) Word(w [32]byte) *Struct {
	s.buf = append(s.buf, w[:]...)
	return s
}

// Uint64 encodes a uint (of any width up to 256 bits) holding v.
func (s *Struct) Uint64(v uint64) *Struct {
	var w [32]byte
	binary.BigEndian.PutUint64(w[24:], v)
	return s.Word(w)
}

// Int64 encodes an int256 holding v: two's complement, sign-extended.
func (s *Struct) Int64(v int64) *Struct {
	var w [32]byte
	if v < 0 {
		for i := range 24 {
			w[i] = 0xff
		}
	}
	binary.BigEndian.PutUint64(w[24:], uint64(v))
	return s.Word(w)
}

// Bool encodes a bool member.
func (s *Struct) Bool(v bool) *Struct {
	var w [32]byte
	if v {
		w[31] = 1
	}
	return s.Word(w)
}

// Address encodes an address member.
func (s *Struct) Address(a common.Address) *Struct {
	var w [32]byte
	copy(w[12:], a[:])
	return s.Word(w)
}

// emptyList is keccak256 of nothing, the encoding of an empty string[]:
// most grants carry two (no approvers, no delegations), and each would
// cost a permutation of its own.
var emptyList = crypto.Keccak256Hash(nil)

// Strings encodes a string[] member: the hash of its elements' hashes.
func (s *Struct) Strings(list []string) *Struct {
	if len(list) == 0 {
		return s.Word(emptyList)
	}
	parts := s.scratch[:0]
	for _, v := range list {
		s.hasher.Reset()
		s.hasher.Write([]byte(v))
		s.hasher.Read(s.sumOut[:])
		parts = append(parts, s.sumOut[:]...)
	}
	s.scratch = parts
	s.buf = s.sum(s.buf, parts)
	return s
}

// Hash is hashStruct: keccak256 of the encoding. It returns s to its pool.
func (s *Struct) Hash() common.Hash {
	s.hasher.Reset()
	s.hasher.Write(s.buf)
	s.hasher.Read(s.sumOut[:])
	out := common.Hash(s.sumOut)
	s.release()
	return out
}

// Digest is the EIP-712 signing hash of the message in the domain whose
// separator is given. It returns s to its pool.
func (s *Struct) Digest(separator common.Hash) common.Hash {
	s.hasher.Reset()
	s.hasher.Write(s.buf)
	s.hasher.Read(s.sumOut[:]) // hashStruct
	// The preimage is built in scratch: handing the separator, a
	// parameter, to the hasher's interface would move it to the heap.
	s.scratch = append(append(append(s.scratch[:0], 0x19, 0x01), separator[:]...), s.sumOut[:]...)
	s.hasher.Reset()
	s.hasher.Write(s.scratch)
	s.hasher.Read(s.sumOut[:])
	out := common.Hash(s.sumOut)
	s.release()
	return out
}

func (s *Struct) release() {
	// A notice's session list may be large: keep no such buffer.
	if cap(s.scratch) <= 64<<10 && cap(s.buf) <= 64<<10 {
		structs.Put(s)
	}
}

// Digest is the signing hash of a struct hash computed elsewhere.
func Digest(separator, structHash common.Hash) common.Hash {
	var buf [2 + 32 + 32]byte
	buf[0], buf[1] = 0x19, 0x01
	copy(buf[2:], separator[:])
	copy(buf[34:], structHash[:])
	return crypto.Keccak256Hash(buf[:])
}
