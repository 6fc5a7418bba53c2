package command

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/twin"
)

// Command statuses in answers.
const (
	StatusDone            = "done"
	StatusRefused         = "refused" // by the gateway
	StatusFailed          = "failed"  // the gateway's driver failed
	StatusPendingApproval = "pending_approval"
	StatusRejected        = "rejected"
	StatusInProgress      = "in_progress"
)

type (
	// CommandView is a command as answers show it.
	CommandView struct {
		Twin     string  `json:"twin"`
		Actuator string  `json:"actuator"`
		Op       string  `json:"op"`
		Value    float64 `json:"value"`
		Unit     string  `json:"unit"`
		Key      string  `json:"key"`
		Operator string  `json:"operator"`
		Hash     string  `json:"hash"`
		Reason   string  `json:"reason,omitempty"`
		// Zone is where the realm saw the operator when it decided.
		Zone string `json:"zone,omitempty"`
	}
	// SignedView is a signed document with its signature and signer.
	SignedView struct {
		TypedData TypedDataView `json:"typed_data"`
		Signature string        `json:"signature"`
		Signer    string        `json:"signer"`
	}
	// AckView is a gateway's signed acknowledgement.
	AckView struct {
		Result string  `json:"result"`
		Reason string  `json:"reason,omitempty"`
		Detail string  `json:"detail,omitempty"`
		Value  float64 `json:"value"`
		Target float64 `json:"target"`
		SignedView
	}
	// Answer is what a command came to.
	Answer struct {
		Status   string        `json:"status"`
		Command  CommandView   `json:"command"`
		Decision *policy.View  `json:"decision,omitempty"`
		Approval *ApprovalView `json:"approval,omitempty"`
		Grant    *SignedView   `json:"grant,omitempty"`
		Ack      *AckView      `json:"ack,omitempty"`
		// OwnerApproval is an agent's command waiting in its owner's
		// approval queue (status pending_owner_approval).
		OwnerApproval *approval.View `json:"owner_approval,omitempty"`
	}
	// ApprovalView is an approval as answers show it.
	ApprovalView struct {
		ID        string    `json:"id"`
		Status    string    `json:"status"`
		Requester string    `json:"requester"`
		Approver  string    `json:"approver,omitempty"`
		Created   time.Time `json:"created"`
		Expires   time.Time `json:"expires"`
	}
	// Approval is a critical command waiting for, or past, its second
	// operator. Its key is the command hash.
	Approval struct {
		Command twin.Command `json:"command"`
		Reason  string       `json:"reason,omitempty"`
		// Zone is where the realm saw the requester when they asked; the
		// approved command is decided with where it sees them then.
		Zone      string    `json:"zone,omitempty"`
		Requester string    `json:"requester"`
		Session   string    `json:"session"`
		Created   time.Time `json:"created"`
		Status    string    `json:"status"`
		Approver  string    `json:"approver,omitempty"`
		Answer    *Answer   `json:"answer,omitempty"`
		// Lease: past it, an in_progress command is settled by any node
		// (critical.go).
		Lease time.Time `json:"lease,omitzero"`
	}
)

// TypedDataView is a signed document as eth_signTypedData_v4 JSON. An
// answer made by the realm builds it only when the answer is encoded: the
// typed data is for a client to check the signature, and an answer the
// realm consumes in-process (or never sends) need not pay for it.
type TypedDataView struct {
	apitypes.TypedData
	build func() apitypes.TypedData
}

func lazyTypedData(build func() apitypes.TypedData) TypedDataView {
	return TypedDataView{build: build}
}

// Typed is the typed data, built if need be.
func (v *TypedDataView) Typed() apitypes.TypedData {
	if v.build != nil {
		return v.build()
	}
	return v.TypedData
}

func (v TypedDataView) MarshalJSON() ([]byte, error) { return json.Marshal(v.Typed()) }

func (v *TypedDataView) UnmarshalJSON(data []byte) error {
	v.build = nil
	return json.Unmarshal(data, &v.TypedData)
}

// EncodeAnswer is an answer as the API sends and the Idempotency-Key's
// record keeps it: indented JSON and a newline. A node that resolves a
// command another node lost (resolve.go) stores the same bytes.
func EncodeAnswer(a *Answer) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(a)
	return b.Bytes()
}

// withAck completes an answer with the gateway's acknowledgement, shown
// with the key of the gateway that signed it.
func (g *Gateways) withAck(answer *Answer, sa twin.SignedAck) {
	ack := &sa.Ack
	answer.Status = string(ack.Result)
	answer.Ack = &AckView{Result: string(ack.Result), Reason: string(ack.Reason), Detail: ack.Detail,
		Value: twin.FromMicro(ack.ValueMicro), Target: twin.FromMicro(ack.TargetMicro),
		SignedView: SignedView{TypedData: lazyTypedData(ack.TypedData), Signature: sa.Signature.Hex(), Signer: g.keyHex(ack.Twin)}}
}

// View is the approval as answers show it.
func (rec *Approval) View() *ApprovalView {
	return &ApprovalView{ID: rec.Command.Hash().Hex(), Status: rec.Status, Requester: rec.Requester, Approver: rec.Approver,
		Created: rec.Created, Expires: rec.Created.Add(ApprovalTTL)}
}

// ViewCommand is c, on actuator a, as answers show it.
func ViewCommand(c twin.Command, a twin.Actuator, req twin.CommandRequest) CommandView {
	return viewCommandHashed(c, c.Hash().Hex(), a, req)
}

// viewCommandHashed is ViewCommand for a caller that has the hash already.
func viewCommandHashed(c twin.Command, hash string, a twin.Actuator, req twin.CommandRequest) CommandView {
	return CommandView{Twin: c.Twin, Actuator: c.Actuator, Op: string(c.Op), Value: c.Value(), Unit: a.Unit, Key: c.Key,
		Operator: c.Operator, Hash: hash, Reason: req.Reason, Zone: req.Zone}
}
