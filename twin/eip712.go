package twin

import (
	"encoding/binary"
	"math/big"

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
	revocationType = "RevocationNotice(uint64 seq,uint64 at,string[] sessions)"
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
// field is one 32-byte word.
type structEncoder struct{ buf []byte }

func newStruct(typeHash common.Hash, fields int) *structEncoder {
	e := &structEncoder{buf: make([]byte, 0, 32*(fields+1))}
	e.buf = append(e.buf, typeHash[:]...)
	return e
}

func (e *structEncoder) str(s string) *structEncoder {
	e.buf = append(e.buf, crypto.Keccak256([]byte(s))...)
	return e
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

func (e *structEncoder) address(a common.Address) *structEncoder {
	var w [32]byte
	copy(w[12:], a[:])
	return e.word(w)
}

func (e *structEncoder) strings(list []string) *structEncoder {
	parts := make([]byte, 0, 32*len(list))
	for _, s := range list {
		parts = append(parts, crypto.Keccak256([]byte(s))...)
	}
	e.buf = append(e.buf, crypto.Keccak256(parts)...)
	return e
}

// digest is the EIP-712 signing hash: keccak256(0x1901 || domain || hashStruct).
func (e *structEncoder) digest() common.Hash {
	h := crypto.Keccak256(e.buf)
	return crypto.Keccak256Hash([]byte{0x19, 0x01}, domainSeparator[:], h)
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
