package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/zerorealm/zerorealm/internal/eip712"
	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// Grant is the realm's permission for exactly one command, for a few
// seconds. Times are Unix milliseconds.
type Grant struct {
	Twin       string      `json:"twin"`
	Actuator   string      `json:"actuator"`
	Op         Op          `json:"op"`
	ValueMicro int64       `json:"valueMicro"`
	Command    common.Hash `json:"command"`
	Nonce      uint64      `json:"nonce"`
	NotBefore  uint64      `json:"notBefore"`
	Expiry     uint64      `json:"expiry"`
	Operator   string      `json:"operator"`
	// Session is the operator's session; gateways refuse grants of revoked
	// sessions. An agent has none: "" when Delegations is set.
	Session   string   `json:"session"`
	Approvers []string `json:"approvers"`
	// Owner and Delegations are set when an agent commands (then Operator
	// is the agent's id, ag_...): the avatar whose authority it is, and
	// the ids of its delegation chain, root first. A gateway refuses the
	// grant when any of them, or the agent, is revoked. Both are empty
	// for a person's command.
	Owner       string   `json:"owner"`
	Delegations []string `json:"delegations"`
}

// MaxDelegations bounds a grant's chain, as the agents domain bounds a
// delegation token's blocks.
const MaxDelegations = 8

// ByAgent reports whether an agent issued the grant's command.
func (g *Grant) ByAgent() bool { return len(g.Delegations) > 0 }

// Limits of a grant on the wire.
const (
	MaxGrantBytes = 4 << 10
	MaxApprovers  = 8
	maxFieldLen   = 128
)

// Digest is the grant's EIP-712 signing hash.
func (g *Grant) Digest() common.Hash {
	return eip712.New(grantTypeHash).
		String(g.Twin).String(g.Actuator).String(string(g.Op)).Int64(g.ValueMicro).Word(g.Command).
		Uint64(g.Nonce).Uint64(g.NotBefore).Uint64(g.Expiry).String(g.Operator).String(g.Session).Strings(g.Approvers).String(g.Owner).Strings(g.Delegations).
		Digest(domainSeparator)
}

// TypedData is the grant as eth_signTypedData_v4 JSON.
func (g *Grant) TypedData() apitypes.TypedData {
	approvers := make([]any, len(g.Approvers))
	for i, a := range g.Approvers {
		approvers[i] = a
	}
	delegations := make([]any, len(g.Delegations))
	for i, d := range g.Delegations {
		delegations[i] = d
	}
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": domainTypes(),
			"CommandGrant": {
				{Name: "twin", Type: "string"}, {Name: "actuator", Type: "string"}, {Name: "op", Type: "string"},
				{Name: "valueMicro", Type: "int256"}, {Name: "command", Type: "bytes32"}, {Name: "nonce", Type: "uint64"},
				{Name: "notBefore", Type: "uint64"}, {Name: "expiry", Type: "uint64"}, {Name: "operator", Type: "string"},
				{Name: "session", Type: "string"}, {Name: "approvers", Type: "string[]"},
				{Name: "owner", Type: "string"}, {Name: "delegations", Type: "string[]"},
			},
		},
		PrimaryType: "CommandGrant",
		Domain:      typedDomain(),
		Message: apitypes.TypedDataMessage{
			"twin": g.Twin, "actuator": g.Actuator, "op": string(g.Op), "valueMicro": bigString(g.ValueMicro),
			"command": g.Command.Hex(), "nonce": u64String(g.Nonce), "notBefore": u64String(g.NotBefore),
			"expiry": u64String(g.Expiry), "operator": g.Operator, "session": g.Session, "approvers": approvers,
			"owner": g.Owner, "delegations": delegations,
		},
	}
}

// SignedGrant is a grant with the realm's signature, as it travels over
// NATS: {"grant": {...}, "signature": "0x..."}.
type SignedGrant struct {
	Grant     Grant     `json:"grant"`
	Signature Signature `json:"-"`
}

type signedGrantWire struct {
	Grant     Grant  `json:"grant"`
	Signature string `json:"signature"`
}

// SignGrant signs g with the realm's key.
func (s *Signer) SignGrant(g Grant) SignedGrant {
	return SignedGrant{Grant: g, Signature: s.sign(g.Digest())}
}

// MarshalJSON writes the wire form.
func (sg SignedGrant) MarshalJSON() ([]byte, error) { return sg.Encode(), nil }

// Encode is MarshalJSON without the error a grant cannot produce.
func (sg SignedGrant) Encode() []byte { return sg.AppendEncode(make([]byte, 0, 512)) }

// AppendEncode appends the wire form to b, for a sender that reuses its
// buffers.
func (sg *SignedGrant) AppendEncode(b []byte) []byte {
	b = append(b, `{"grant":`...)
	b = appendGrant(b, &sg.Grant)
	b = append(b, `,"signature":`...)
	b = appendJSONSignature(b, sg.Signature)
	return append(b, '}')
}

// DecodeSignedGrant parses the wire form of a grant and checks its shape:
// size, unknown fields, ids, lengths and the signature's encoding. It does
// not verify the signature or the times; the gateway does that.
func DecodeSignedGrant(data []byte) (SignedGrant, error) {
	if len(data) > MaxGrantBytes {
		return SignedGrant{}, fmt.Errorf("%w: grant is %d bytes, at most %d", ErrInvalidGrant, len(data), MaxGrantBytes)
	}
	g, signature, err := decodeGrantWire(data)
	if err != nil {
		return SignedGrant{}, fmt.Errorf("%w: grant: %s", ErrInvalidGrant, err)
	}
	sig, err := ParseSignature(signature)
	if err != nil {
		return SignedGrant{}, err
	}
	switch {
	case !ValidID(g.Twin) || !ValidID(g.Actuator):
		return SignedGrant{}, fmt.Errorf("%w: grant names no valid twin and actuator", ErrInvalidGrant)
	case g.Op != OpSet && g.Op != OpStop:
		return SignedGrant{}, fmt.Errorf("%w: grant op %q", ErrInvalidGrant, g.Op)
	case g.Operator == "" || len(g.Operator) > maxFieldLen || len(g.Session) > maxFieldLen:
		return SignedGrant{}, fmt.Errorf("%w: grant operator missing, or operator or session too long", ErrInvalidGrant)
	case len(g.Delegations) == 0 && (g.Session == "" || g.Owner != ""):
		return SignedGrant{}, fmt.Errorf("%w: a person's grant names a session and no owner", ErrInvalidGrant)
	case len(g.Delegations) > 0 && (g.Session != "" || g.Owner == "" || len(g.Owner) > maxFieldLen):
		return SignedGrant{}, fmt.Errorf("%w: an agent's grant names its owner and no session", ErrInvalidGrant)
	case len(g.Delegations) > MaxDelegations:
		return SignedGrant{}, fmt.Errorf("%w: grant has %d delegations, at most %d", ErrInvalidGrant, len(g.Delegations), MaxDelegations)
	case len(g.Approvers) > MaxApprovers:
		return SignedGrant{}, fmt.Errorf("%w: grant has %d approvers, at most %d", ErrInvalidGrant, len(g.Approvers), MaxApprovers)
	case g.Expiry <= g.NotBefore:
		return SignedGrant{}, fmt.Errorf("%w: grant expires before it starts", ErrInvalidGrant)
	}
	for _, a := range g.Approvers {
		if a == "" || len(a) > maxFieldLen {
			return SignedGrant{}, fmt.Errorf("%w: grant approver missing or too long", ErrInvalidGrant)
		}
	}
	for _, d := range g.Delegations {
		if d == "" || len(d) > maxFieldLen {
			return SignedGrant{}, fmt.Errorf("%w: grant delegation missing or too long", ErrInvalidGrant)
		}
	}
	if g.Approvers == nil {
		g.Approvers = []string{}
	}
	if g.Delegations == nil {
		g.Delegations = []string{}
	}
	return SignedGrant{Grant: g, Signature: sig}, nil
}

// decodeStrict decodes exactly one JSON object with no unknown fields, no
// member named twice and only valid UTF-8: grants and acknowledgements come
// over NATS from peers that may be anyone with access to it.
func decodeStrict(data []byte, v any) error {
	if err := strictjson.Check(data); err != nil && !errors.Is(err, strictjson.ErrSyntax) {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// Signer recovers the address that signed the grant.
func (sg *SignedGrant) Signer() (common.Address, error) {
	signer, _, err := sg.SignerAndDigest()
	return signer, err
}

// SignerAndDigest is Signer for a caller that keeps the grant's digest
// too (a gateway records it in its journal), so that it is hashed once.
func (sg *SignedGrant) SignerAndDigest() (common.Address, common.Hash, error) {
	digest := sg.Grant.Digest()
	signer, err := recoverSigner(digest, sg.Signature)
	return signer, digest, err
}

// Millis converts a time to the Unix milliseconds grants carry.
func Millis(t time.Time) uint64 {
	ms := t.UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint64(ms)
}

// FromMillis converts Unix milliseconds back to a time.
func FromMillis(ms uint64) time.Time {
	if ms > 1<<62 {
		ms = 1 << 62
	}
	return time.UnixMilli(int64(ms)).UTC()
}
