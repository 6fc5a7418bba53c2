package twin

import (
	"math/big"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/zerorealm/zerorealm/internal/eip712"
)

// The EIP-712 domain of every twin message. It has no chain id: grants are
// never submitted to a chain, and the domain name keeps them apart from the
// realm's other signed payloads.
const (
	DomainName    = "ZeroRealm Twin"
	DomainVersion = "1"
)

// EIP-712 type strings, encoded with internal/eip712 (a gated command is
// hashed four times); twin's tests check every digest against
// go-ethereum's generic implementation.
const (
	commandType    = "Command(string twin,string actuator,string op,int256 valueMicro,string operator,string key)"
	grantType      = "CommandGrant(string twin,string actuator,string op,int256 valueMicro,bytes32 command,uint64 nonce,uint64 notBefore,uint64 expiry,string operator,string session,string[] approvers,string owner,string[] delegations)"
	ackType        = "CommandAck(string twin,string actuator,bytes32 command,uint64 nonce,string result,string reason,int256 valueMicro,int256 targetMicro,uint64 at)"
	stateType      = "TwinState(string twin,string actuator,int256 valueMicro,int256 targetMicro,uint64 seq,uint64 at)"
	revocationType = "RevocationNotice(uint64 seq,uint64 at,bool complete,string[] sessions,string[] agents)"
	rotationType   = "KeyRotation(address previous,address next,uint64 at)"
	// A status query and its answer (status.go).
	statusQueryType = "CommandStatusQuery(string twin,bytes32 command,uint64 nonce,uint64 notBefore,uint64 expiry,uint64 query,uint64 at)"
	statusType      = "CommandStatus(string twin,bytes32 command,uint64 query,string state,string reason,uint64 since,uint64 at)"
)

var (
	commandTypeHash     = eip712.TypeHash(commandType)
	grantTypeHash       = eip712.TypeHash(grantType)
	ackTypeHash         = eip712.TypeHash(ackType)
	stateTypeHash       = eip712.TypeHash(stateType)
	revocationTypeHash  = eip712.TypeHash(revocationType)
	rotationTypeHash    = eip712.TypeHash(rotationType)
	statusQueryTypeHash = eip712.TypeHash(statusQueryType)
	statusTypeHash      = eip712.TypeHash(statusType)
	domainSeparator     = eip712.Domain{Name: DomainName, Version: DomainVersion}.Separator()
)

// typedDomain is the domain as eth_signTypedData_v4 JSON shows it.
func typedDomain() apitypes.TypedDataDomain {
	return apitypes.TypedDataDomain{Name: DomainName, Version: DomainVersion}
}

func domainTypes() []apitypes.Type {
	return []apitypes.Type{{Name: "name", Type: "string"}, {Name: "version", Type: "string"}}
}

func bigString(v int64) string { return big.NewInt(v).String() }

func u64String(v uint64) string { return new(big.Int).SetUint64(v).String() }
