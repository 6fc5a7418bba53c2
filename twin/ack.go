package twin

import (
	"encoding/json"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/zerorealm/zerorealm/internal/eip712"
)

// Result is what a gateway did with a grant.
type Result string

const (
	// ResultDone: the gateway verified the grant and its driver accepted
	// the new target.
	ResultDone Result = "done"
	// ResultRefused: verification or an interlock refused the grant;
	// nothing moved.
	ResultRefused Result = "refused"
	// ResultFailed: the grant was valid but the driver failed.
	ResultFailed Result = "failed"
)

// Ack is the gateway's signed answer to one grant, carrying the result and
// the actuator's state after it. Its Nonce and Command tie it to the grant.
type Ack struct {
	Twin        string      `json:"twin"`
	Actuator    string      `json:"actuator"`
	Command     common.Hash `json:"command"`
	Nonce       uint64      `json:"nonce"`
	Result      Result      `json:"result"`
	Reason      Reason      `json:"reason"`
	Detail      string      `json:"detail,omitempty"` // not signed: a human explanation of Reason
	ValueMicro  int64       `json:"valueMicro"`
	TargetMicro int64       `json:"targetMicro"`
	At          uint64      `json:"at"`
}

// Digest is the acknowledgement's EIP-712 signing hash.
func (a *Ack) Digest() common.Hash {
	return eip712.New(ackTypeHash).String(a.Twin).String(a.Actuator).Word(a.Command).Uint64(a.Nonce).
		String(string(a.Result)).String(string(a.Reason)).Int64(a.ValueMicro).Int64(a.TargetMicro).Uint64(a.At).Digest(domainSeparator)
}

// TypedData is the acknowledgement as eth_signTypedData_v4 JSON.
func (a *Ack) TypedData() apitypes.TypedData {
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": domainTypes(),
			"CommandAck": {
				{Name: "twin", Type: "string"}, {Name: "actuator", Type: "string"}, {Name: "command", Type: "bytes32"},
				{Name: "nonce", Type: "uint64"}, {Name: "result", Type: "string"}, {Name: "reason", Type: "string"},
				{Name: "valueMicro", Type: "int256"}, {Name: "targetMicro", Type: "int256"}, {Name: "at", Type: "uint64"},
			},
		},
		PrimaryType: "CommandAck",
		Domain:      typedDomain(),
		Message: apitypes.TypedDataMessage{
			"twin": a.Twin, "actuator": a.Actuator, "command": a.Command.Hex(), "nonce": u64String(a.Nonce),
			"result": string(a.Result), "reason": string(a.Reason), "valueMicro": bigString(a.ValueMicro),
			"targetMicro": bigString(a.TargetMicro), "at": u64String(a.At),
		},
	}
}

// SignedAck is an acknowledgement with the gateway's signature.
type SignedAck struct {
	Ack       Ack       `json:"ack"`
	Signature Signature `json:"-"`
}

type signedAckWire struct {
	Ack       Ack    `json:"ack"`
	Signature string `json:"signature"`
}

// SignAck signs a with the gateway's key.
func (s *Signer) SignAck(a Ack) SignedAck { return SignedAck{Ack: a, Signature: s.sign(a.Digest())} }

// MarshalJSON writes the wire form.
func (sa SignedAck) MarshalJSON() ([]byte, error) { return sa.Encode(), nil }

// Encode is MarshalJSON without the error an ack cannot produce.
func (sa SignedAck) Encode() []byte { return sa.AppendEncode(make([]byte, 0, 512)) }

// AppendEncode appends the wire form to b, for a sender that reuses its
// buffers.
func (sa *SignedAck) AppendEncode(b []byte) []byte {
	b = append(b, `{"ack":`...)
	b = appendAck(b, &sa.Ack)
	b = append(b, `,"signature":`...)
	b = appendJSONSignature(b, sa.Signature)
	return append(b, '}')
}

// DecodeSignedAck parses an acknowledgement's wire form.
func DecodeSignedAck(data []byte) (SignedAck, error) {
	if len(data) > MaxGrantBytes {
		return SignedAck{}, badAck("acknowledgement is %d bytes", len(data))
	}
	a, signature, err := decodeAckWire(data)
	if err != nil {
		return SignedAck{}, badAck("acknowledgement: %s", err)
	}
	sig, err := ParseSignature(signature)
	if err != nil {
		return SignedAck{}, err
	}
	return SignedAck{Ack: a, Signature: sig}, nil
}

// Signer recovers the address that signed the acknowledgement.
func (sa *SignedAck) Signer() (common.Address, error) {
	return recoverSigner(sa.Ack.Digest(), sa.Signature)
}

// Telemetry is a gateway's signed report of one actuator's state,
// published on StateSubject.
type Telemetry struct {
	Twin        string `json:"twin"`
	Actuator    string `json:"actuator"`
	ValueMicro  int64  `json:"valueMicro"`
	TargetMicro int64  `json:"targetMicro"`
	Seq         uint64 `json:"seq"`
	At          uint64 `json:"at"`
}

// Digest is the report's EIP-712 signing hash.
func (t *Telemetry) Digest() common.Hash {
	return eip712.New(stateTypeHash).String(t.Twin).String(t.Actuator).Int64(t.ValueMicro).Int64(t.TargetMicro).
		Uint64(t.Seq).Uint64(t.At).Digest(domainSeparator)
}

// SignedTelemetry is a report with the gateway's signature.
type SignedTelemetry struct {
	Telemetry Telemetry `json:"state"`
	Signature Signature `json:"-"`
}

type signedTelemetryWire struct {
	Telemetry Telemetry `json:"state"`
	Signature string    `json:"signature"`
}

// SignTelemetry signs a report with the gateway's key.
func (s *Signer) SignTelemetry(t Telemetry) SignedTelemetry {
	return SignedTelemetry{Telemetry: t, Signature: s.sign(t.Digest())}
}

// Encode writes the wire form.
func (st SignedTelemetry) Encode() []byte {
	b, _ := json.Marshal(signedTelemetryWire{Telemetry: st.Telemetry, Signature: st.Signature.Hex()})
	return b
}

// DecodeSignedTelemetry parses a report's wire form.
func DecodeSignedTelemetry(data []byte) (SignedTelemetry, error) {
	if len(data) > MaxGrantBytes {
		return SignedTelemetry{}, badAck("report is %d bytes", len(data))
	}
	var w signedTelemetryWire
	if err := decodeStrict(data, &w); err != nil {
		return SignedTelemetry{}, badAck("report: %s", err)
	}
	sig, err := ParseSignature(w.Signature)
	if err != nil {
		return SignedTelemetry{}, err
	}
	return SignedTelemetry{Telemetry: w.Telemetry, Signature: sig}, nil
}

// Signer recovers the address that signed the report.
func (st *SignedTelemetry) Signer() (common.Address, error) {
	return recoverSigner(st.Telemetry.Digest(), st.Signature)
}

// State converts a report to registry state.
func (t Telemetry) State() State {
	return State{Value: FromMicro(t.ValueMicro), Target: FromMicro(t.TargetMicro), Moving: t.ValueMicro != t.TargetMicro, At: FromMillis(t.At), Seq: t.Seq}
}
