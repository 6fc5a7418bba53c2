package twin

import (
	"encoding/binary"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// The EIP-712 domain of every twin message. It has no chain id: grants are
// never submitted to a chain, and the domain name keeps them apart from the
// realm's other signed payloads.
const (
	DomainName    = "ZeroRealm Twin"
	DomainVersion = "1"
)

// EIP-712 type strings. They are hashed by hand for speed (a gated command
// is hashed four times); twin's tests check every digest against
// go-ethereum's generic implementation.
const (
	commandType    = "Command(string twin,string actuator,string op,int256 valueMicro,string operator,string key)"
	grantType      = "CommandGrant(string twin,string actuator,string op,int256 valueMicro,bytes32 command,uint64 nonce,uint64 notBefore,uint64 expiry,string operator,string session,string[] approvers)"
	ackType        = "CommandAck(string twin,string actuator,bytes32 command,uint64 nonce,string result,string reason,int256 valueMicro,int256 targetMicro,uint64 at)"
	stateType      = "TwinState(string twin,string actuator,int256 valueMicro,int256 targetMicro,uint64 seq,uint64 at)"
	revocationType = "RevocationNotice(uint64 seq,uint64 at,bool complete,string[] sessions)"
	rotationType   = "KeyRotation(address previous,address next,uint64 at)"
	domainType     = "EIP712Domain(string name,string version)"
)

var (
	commandTypeHash    = crypto.Keccak256Hash([]byte(commandType))
	grantTypeHash      = crypto.Keccak256Hash([]byte(grantType))
	ackTypeHash        = crypto.Keccak256Hash([]byte(ackType))
	stateTypeHash      = crypto.Keccak256Hash([]byte(stateType))
	revocationTypeHash = crypto.Keccak256Hash([]byte(revocationType))
	rotationTypeHash   = crypto.Keccak256Hash([]byte(rotationType))
	domainSeparator    = crypto.Keccak256Hash(
		crypto.Keccak256([]byte(domainType)),
		crypto.Keccak256([]byte(DomainName)),
		crypto.Keccak256([]byte(DomainVersion)),
	)
)

// structEncoder builds encodeData(s) = typeHash || enc(field)...: every
// field is one 32-byte word. Encoders are pooled with their hasher: a gated
// command computes a dozen digests and a hundred hashes.
type structEncoder struct {
	buf     []byte
	hasher  crypto.KeccakState
	scratch []byte
	// sumOut receives each hash: the hasher is an interface, so a local
	// array passed to it would be moved to the heap on every call.
	sumOut [32]byte
}

// eip712Prefix starts every signing hash's preimage.
var eip712Prefix = []byte{0x19, 0x01}

var structEncoders = sync.Pool{New: func() any {
	return &structEncoder{buf: make([]byte, 0, 32*16), hasher: crypto.NewKeccakState(), scratch: make([]byte, 0, 256)}
}}

func newStruct(typeHash common.Hash, fields int) *structEncoder {
	e := structEncoders.Get().(*structEncoder)
	e.buf = append(e.buf[:0], typeHash[:]...)
	return e
}

// sum appends keccak256(data) to out.
func (e *structEncoder) sum(out []byte, data []byte) []byte {
	e.hasher.Reset()
	e.hasher.Write(data)
	e.hasher.Read(e.sumOut[:])
	return append(out, e.sumOut[:]...)
}

func (e *structEncoder) str(s string) *structEncoder {
	if h, ok := stringHashes.get(s); ok {
		e.buf = append(e.buf, h[:]...)
		return e
	}
	e.uncachedStr(s)
	if len(s) <= maxCachedString {
		stringHashes.put(s, [32]byte(e.buf[len(e.buf)-32:]))
	}
	return e
}

// uncachedStr is str for a string unlikely to be seen again, such as an
// idempotency key, which would only push useful entries out of the cache.
func (e *structEncoder) uncachedStr(s string) *structEncoder {
	e.scratch = append(e.scratch[:0], s...)
	e.buf = e.sum(e.buf, e.scratch)
	return e
}

// The strings of a command repeat from one to the next (twin, actuator,
// op, operator, session, result, reason), so their hashes are kept: most
// of a digest's hashing is then the hash of the encoded struct. The cache
// is emptied when it reaches maxCachedStrings, so strings from forged
// messages can cost at most a refill, never unbounded memory.
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

func (e *structEncoder) word(w [32]byte) *structEncoder {
	e.buf = append(e.buf, w[:]...)
	return e
}

func (e *structEncoder) uint64(v uint64) *structEncoder {
	var w [32]byte
	binary.BigEndian.PutUint64(w[24:], v)
	return e.word(w)
}

// int64 encodes as int256 two's complement, sign-extended.
func (e *structEncoder) int64(v int64) *structEncoder {
	var w [32]byte
	if v < 0 {
		for i := range 24 {
			w[i] = 0xff
		}
	}
	binary.BigEndian.PutUint64(w[24:], uint64(v))
	return e.word(w)
}

func (e *structEncoder) bool(v bool) *structEncoder {
	var w [32]byte
	if v {
		w[31] = 1
	}
	return e.word(w)
}

func (e *structEncoder) address(a common.Address) *structEncoder {
	var w [32]byte
	copy(w[12:], a[:])
	return e.word(w)
}

func (e *structEncoder) strings(list []string) *structEncoder {
	// The element hashes go to scratch, and their hash to buf.
	parts := e.scratch[:0]
	for _, s := range list {
		e.hasher.Reset()
		e.hasher.Write([]byte(s))
		e.hasher.Read(e.sumOut[:])
		parts = append(parts, e.sumOut[:]...)
	}
	e.scratch = parts
	e.buf = e.sum(e.buf, parts)
	return e
}

// digest is the EIP-712 signing hash: keccak256(0x1901 || domain ||
// hashStruct). It returns the encoder to its pool.
func (e *structEncoder) digest() common.Hash {
	e.hasher.Reset()
	e.hasher.Write(e.buf)
	e.hasher.Read(e.sumOut[:]) // hashStruct
	e.hasher.Reset()
	e.hasher.Write(eip712Prefix)
	e.hasher.Write(domainSeparator[:])
	e.hasher.Write(e.sumOut[:])
	e.hasher.Read(e.sumOut[:])
	out := common.Hash(e.sumOut)
	if cap(e.scratch) <= 64<<10 { // a notice's session list may be large: keep no such buffer
		structEncoders.Put(e)
	}
	return out
}

// typedDomain is the domain as eth_signTypedData_v4 JSON shows it.
func typedDomain() apitypes.TypedDataDomain {
	return apitypes.TypedDataDomain{Name: DomainName, Version: DomainVersion}
}

func domainTypes() []apitypes.Type {
	return []apitypes.Type{{Name: "name", Type: "string"}, {Name: "version", Type: "string"}}
}

func bigString(v int64) string { return big.NewInt(v).String() }

func u64String(v uint64) string { return new(big.Int).SetUint64(v).String() }
