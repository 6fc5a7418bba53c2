package twin

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/eip712"
)

// A command's status is asked of its twin's gateway when the realm lost
// the answer the gateway gave: a node stopped between the gateway's
// acknowledgement and storing it. The gateway answers from its journal of
// the grants it carried out (twin/gateway.Journal), never from what it
// would do now, and signs the answer, bound to the question by the
// query's random id, so an old answer cannot be passed off as a new one.

// CommandState is what a gateway's journal says of a command.
type CommandState string

const (
	// StateExecuted: the gateway carried out a grant of the command (its
	// driver was called); the status carries that grant's acknowledgement,
	// done or failed. It is never carried out again.
	StateExecuted CommandState = "executed"
	// StatePending: a grant of the command is being carried out now; ask
	// again shortly.
	StatePending CommandState = "pending"
	// StateRefused: the gateway refused the grant the query names; the
	// status carries the refusal's acknowledgement. Nothing moved.
	StateRefused CommandState = "refused"
	// StateUnknown: the journal has no grant of the command, and cannot
	// yet say that the grant asked about never will be carried out (it has
	// not expired, or the journal does not reach back to it).
	StateUnknown CommandState = "unknown"
	// StateNotExecuted: the journal has no grant of the command, holds
	// every grant carried out since before the one asked about, and that
	// grant has expired: it was not carried out and never will be.
	StateNotExecuted CommandState = "not_executed"
	// StateDenied: the gateway did not answer the query: it was not
	// signed by a realm key the gateway trusts, or asked about another
	// twin. Reason says which.
	StateDenied CommandState = "denied"
)

// StatusSubject is where a twin's gateway answers status queries:
// <prefix>.twin.<twin>.status.
func StatusSubject(prefix, twinID string) string { return prefix + ".twin." + twinID + ".status" }

// StatusQuery asks a gateway what became of one grant of a command. The
// realm signs it; Query is random and comes back in the answer.
type StatusQuery struct {
	Twin      string      `json:"twin"`
	Command   common.Hash `json:"command"`
	Nonce     uint64      `json:"nonce"`
	NotBefore uint64      `json:"notBefore"`
	Expiry    uint64      `json:"expiry"`
	Query     uint64      `json:"query"`
	At        uint64      `json:"at"`
}

// Digest is the query's EIP-712 signing hash.
func (q *StatusQuery) Digest() common.Hash {
	return eip712.New(statusQueryTypeHash).String(q.Twin).Word(q.Command).Uint64(q.Nonce).Uint64(q.NotBefore).
		Uint64(q.Expiry).Uint64(q.Query).Uint64(q.At).Digest(domainSeparator)
}

// SignedStatusQuery is a query with the realm's signature.
type SignedStatusQuery struct {
	Query     StatusQuery
	Signature Signature
}

type signedQueryWire struct {
	Query     StatusQuery `json:"query"`
	Signature string      `json:"signature"`
}

// MaxStatusBytes bounds a status query or answer on the wire: an answer
// carries one acknowledgement.
const MaxStatusBytes = 8 << 10

// SignStatusQuery signs a query with the realm's key.
func (s *Signer) SignStatusQuery(q StatusQuery) SignedStatusQuery {
	return SignedStatusQuery{Query: q, Signature: s.sign(q.Digest())}
}

// Encode writes the wire form.
func (sq SignedStatusQuery) Encode() []byte {
	b, _ := json.Marshal(signedQueryWire{Query: sq.Query, Signature: sq.Signature.Hex()})
	return b
}

// DecodeSignedStatusQuery parses a query's wire form.
func DecodeSignedStatusQuery(data []byte) (SignedStatusQuery, error) {
	if len(data) > MaxStatusBytes {
		return SignedStatusQuery{}, fmt.Errorf("%w: status query is %d bytes", ErrInvalidGrant, len(data))
	}
	var w signedQueryWire
	if err := decodeStrict(data, &w); err != nil {
		return SignedStatusQuery{}, fmt.Errorf("%w: status query: %s", ErrInvalidGrant, err)
	}
	if !ValidID(w.Query.Twin) {
		return SignedStatusQuery{}, fmt.Errorf("%w: status query names no valid twin", ErrInvalidGrant)
	}
	sig, err := ParseSignature(w.Signature)
	if err != nil {
		return SignedStatusQuery{}, err
	}
	return SignedStatusQuery{Query: w.Query, Signature: sig}, nil
}

// Signer recovers the address that signed the query.
func (sq *SignedStatusQuery) Signer() (common.Address, error) {
	return recoverSigner(sq.Query.Digest(), sq.Signature)
}

// CommandStatus is a gateway's signed answer to a StatusQuery. Since is
// the journal's horizon: it holds every grant the gateway began to carry
// out at or after Since (Unix milliseconds, the gateway's clock).
type CommandStatus struct {
	Twin    string       `json:"twin"`
	Command common.Hash  `json:"command"`
	Query   uint64       `json:"query"`
	State   CommandState `json:"state"`
	Reason  string       `json:"reason"`
	Since   uint64       `json:"since"`
	At      uint64       `json:"at"`
}

// Digest is the status's EIP-712 signing hash.
func (st *CommandStatus) Digest() common.Hash {
	return eip712.New(statusTypeHash).String(st.Twin).Word(st.Command).Uint64(st.Query).String(string(st.State)).
		String(st.Reason).Uint64(st.Since).Uint64(st.At).Digest(domainSeparator)
}

// SignedStatus is a status with the gateway's signature and, when the
// state is executed or refused, the acknowledgement the journal kept,
// signed when the grant was answered.
type SignedStatus struct {
	Status    CommandStatus
	Signature Signature
	Ack       *SignedAck
}

type signedStatusWire struct {
	Status    CommandStatus   `json:"status"`
	Signature string          `json:"signature"`
	Ack       json.RawMessage `json:"ack,omitempty"`
}

// SignStatus signs a status with the gateway's key.
func (s *Signer) SignStatus(st CommandStatus, ack *SignedAck) SignedStatus {
	return SignedStatus{Status: st, Signature: s.sign(st.Digest()), Ack: ack}
}

// Encode writes the wire form.
func (ss SignedStatus) Encode() []byte {
	w := signedStatusWire{Status: ss.Status, Signature: ss.Signature.Hex()}
	if ss.Ack != nil {
		w.Ack = ss.Ack.Encode()
	}
	b, _ := json.Marshal(w)
	return b
}

// DecodeSignedStatus parses a status's wire form.
func DecodeSignedStatus(data []byte) (SignedStatus, error) {
	if len(data) > MaxStatusBytes {
		return SignedStatus{}, badAck("command status is %d bytes", len(data))
	}
	var w signedStatusWire
	if err := decodeStrict(data, &w); err != nil {
		return SignedStatus{}, badAck("command status: %s", err)
	}
	switch w.Status.State {
	case StateExecuted, StateRefused:
		if len(w.Ack) == 0 {
			return SignedStatus{}, badAck("command status %s carries no acknowledgement", w.Status.State)
		}
	case StatePending, StateUnknown, StateNotExecuted, StateDenied:
		if len(w.Ack) != 0 {
			return SignedStatus{}, badAck("command status %s carries an acknowledgement", w.Status.State)
		}
	default:
		return SignedStatus{}, badAck("command status has an unknown state %q", w.Status.State)
	}
	sig, err := ParseSignature(w.Signature)
	if err != nil {
		return SignedStatus{}, err
	}
	ss := SignedStatus{Status: w.Status, Signature: sig}
	if len(w.Ack) != 0 {
		sa, err := DecodeSignedAck(w.Ack)
		if err != nil {
			return SignedStatus{}, err
		}
		ss.Ack = &sa
	}
	return ss, nil
}

// Signer recovers the address that signed the status.
func (ss *SignedStatus) Signer() (common.Address, error) {
	return recoverSigner(ss.Status.Digest(), ss.Signature)
}

// ErrStatusUnavailable reports that a gateway gave no usable status: no
// gateway answered, or its answer did not verify.
var ErrStatusUnavailable = errors.New("twin: the gateway gave no command status")

// Status asks the gateway of grant's twin what became of it, and verifies
// the answer: signed by the twin's gateway key, bound to this query, and
// for an executed or refused command, an acknowledgement of that command
// signed by the same key (for refused, of this very grant). Only the
// grant's identifying fields are sent, never the grant.
func (d *Dispatcher) Status(ctx context.Context, g *Grant) (SignedStatus, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.Timeout)
		defer cancel()
	}
	var qb [8]byte
	_, _ = rand.Read(qb[:])
	q := StatusQuery{Twin: g.Twin, Command: g.Command, Nonce: g.Nonce, NotBefore: g.NotBefore, Expiry: g.Expiry,
		Query: binary.BigEndian.Uint64(qb[:]), At: Millis(d.cfg.Now())}
	msg, err := d.cfg.Conn.RequestWithContext(ctx, StatusSubject(d.cfg.Prefix, g.Twin), d.cfg.Signer.SignStatusQuery(q).Encode())
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return SignedStatus{}, fmt.Errorf("%w: no gateway is connected for twin %s", ErrStatusUnavailable, g.Twin)
		}
		return SignedStatus{}, fmt.Errorf("%w: twin %s: %w", ErrStatusUnavailable, g.Twin, err)
	}
	ss, err := DecodeSignedStatus(msg.Data)
	if err != nil {
		return SignedStatus{}, fmt.Errorf("%w: %w", ErrStatusUnavailable, err)
	}
	want, ok := d.cfg.GatewayKey(g.Twin)
	if !ok {
		return SignedStatus{}, fmt.Errorf("%w: no gateway key is registered for twin %s", ErrStatusUnavailable, g.Twin)
	}
	if signer, err := ss.Signer(); err != nil || signer != want {
		return SignedStatus{}, fmt.Errorf("%w: the status is not signed by twin %s's gateway key", ErrStatusUnavailable, g.Twin)
	}
	st := &ss.Status
	if st.Twin != g.Twin || st.Command != g.Command || st.Query != q.Query {
		return SignedStatus{}, fmt.Errorf("%w: the status answers another query", ErrStatusUnavailable)
	}
	if ss.Ack != nil {
		a := &ss.Ack.Ack
		signer, err := ss.Ack.Signer()
		okAck := err == nil && signer == want && a.Twin == g.Twin && a.Command == g.Command
		switch st.State {
		case StateExecuted:
			okAck = okAck && (a.Result == ResultDone || a.Result == ResultFailed)
		case StateRefused:
			okAck = okAck && a.Result == ResultRefused && a.Nonce == g.Nonce
		}
		if !okAck {
			return SignedStatus{}, fmt.Errorf("%w: the status's acknowledgement is not the gateway's for this command", ErrStatusUnavailable)
		}
	}
	return ss, nil
}
