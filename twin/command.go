package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/zerorealm/zerorealm/internal/eip712"
	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// Op is what a command asks of an actuator.
type Op string

const (
	// OpSet moves the actuator to Value, at no more than its maximum rate.
	OpSet Op = "set"
	// OpStop holds the actuator where it is now. It carries no value.
	OpStop Op = "stop"
)

// Limits of a command request.
const (
	// MaxCommandBytes bounds a command request body.
	MaxCommandBytes = 4 << 10
	// MaxReasonLength bounds the operator's free-text reason, in bytes.
	MaxReasonLength = 280
	// MaxKeyLength bounds an idempotency key.
	MaxKeyLength = 64
	// MaxMagnitude bounds any value, so that values in millionths of the
	// unit fit an int64 exactly enough.
	MaxMagnitude = 1e12
)

// Micro is the fixed-point scale of values in grants and acknowledgements:
// one unit is 1,000,000. Floats are never signed.
const Micro = 1_000_000

// ToMicro converts a value to millionths of its unit, rounding half away
// from zero.
func ToMicro(v float64) int64 { return int64(math.Round(v * Micro)) }

// FromMicro converts millionths of a unit back to a value.
func FromMicro(m int64) float64 { return float64(m) / Micro }

// CommandRequest is a console's request body for one command, as
// POST /v1/twins/{twin}/actuators/{actuator}/commands accepts it.
type CommandRequest struct {
	Op     Op       `json:"op"`
	Value  *float64 `json:"value,omitempty"`
	Reason string   `json:"reason,omitempty"`
	// Zone is where the operator believes they stand. It is only an
	// assertion: the realm decides from the zone its presence tracking
	// admitted the operator into, and refuses a command whose Zone differs
	// from it, so a claim can narrow what is allowed but never widen it.
	Zone string `json:"zone,omitempty"`
}

// ParseCommandRequest decodes and checks a request body. Unknown fields,
// trailing data, an unknown op, a value that is not a finite number within
// ±MaxMagnitude, and a reason with control characters are refused.
func ParseCommandRequest(data []byte) (CommandRequest, error) {
	var req CommandRequest
	if len(data) > MaxCommandBytes {
		return req, refuse(ReasonMalformed, "command body is %d bytes, at most %d", len(data), MaxCommandBytes)
	}
	if err := strictjson.Check(data); err != nil && !errors.Is(err, strictjson.ErrSyntax) {
		return CommandRequest{}, refuse(ReasonMalformed, "command body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return CommandRequest{}, refuse(ReasonMalformed, "command body: %v", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return CommandRequest{}, refuse(ReasonMalformed, "command body: data after the JSON object")
	}
	if err := req.Validate(); err != nil {
		return CommandRequest{}, err
	}
	return req, nil
}

// jsonProblem keeps decoder errors short and free of Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	return err.Error()
}

// Validate checks a request that did not come through ParseCommandRequest.
func (r CommandRequest) Validate() error {
	switch r.Op {
	case OpSet:
		if r.Value == nil {
			return refuse(ReasonMalformed, "op set needs a value")
		}
		if !finite(*r.Value) {
			return refuse(ReasonNotFinite, "value %v is not a finite number", *r.Value)
		}
		if math.Abs(*r.Value) > MaxMagnitude {
			return refuse(ReasonOutOfRange, "value %g is beyond ±%g", *r.Value, float64(MaxMagnitude))
		}
	case OpStop:
		if r.Value != nil {
			return refuse(ReasonMalformed, "op stop takes no value")
		}
	case "":
		return refuse(ReasonMalformed, "op is required (set or stop)")
	default:
		return refuse(ReasonMalformed, "unknown op %q (want set or stop)", r.Op)
	}
	if len(r.Reason) > MaxReasonLength || !printable(r.Reason) {
		return refuse(ReasonMalformed, "reason must be at most %d bytes of printable text", MaxReasonLength)
	}
	if r.Zone != "" && !ValidID(r.Zone) {
		return refuse(ReasonMalformed, "zone %q is not a zone id", r.Zone)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// ValidKey reports whether k is an idempotency key: 1 to 64 of A-Z, a-z,
// 0-9, '.', '_', ':' and '-'.
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > MaxKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// Command is one canonical command: what its hash binds. The reason and
// zone are not part of it: they explain and qualify a command, they do not
// change what it does.
type Command struct {
	Twin       string `json:"twin"`
	Actuator   string `json:"actuator"`
	Op         Op     `json:"op"`
	ValueMicro int64  `json:"value_micro"`
	Operator   string `json:"operator"`
	Key        string `json:"key"`
}

// NewCommand builds the canonical command of an operator's request.
func NewCommand(twinID, actuatorID, operator, key string, req CommandRequest) (Command, error) {
	if err := req.Validate(); err != nil {
		return Command{}, err
	}
	if !ValidID(twinID) {
		return Command{}, refuse(ReasonUnknownTwin, "no twin %q", twinID)
	}
	if !ValidID(actuatorID) {
		return Command{}, refuse(ReasonUnknownActuator, "no actuator %q", actuatorID)
	}
	if !ValidKey(key) {
		return Command{}, refuse(ReasonMalformed, "Idempotency-Key must be 1 to %d of A-Z, a-z, 0-9, '.', '_', ':' and '-'", MaxKeyLength)
	}
	if operator == "" || len(operator) > 128 {
		return Command{}, refuse(ReasonMalformed, "operator id is missing or too long")
	}
	c := Command{Twin: twinID, Actuator: actuatorID, Op: req.Op, Operator: operator, Key: key}
	if req.Op == OpSet {
		c.ValueMicro = ToMicro(*req.Value)
	}
	return c, nil
}

// Value is the command's value in the actuator's unit.
func (c Command) Value() float64 { return FromMicro(c.ValueMicro) }

// Hash is the command's 32-byte digest: the EIP-712 signing hash of
// Command(string twin,string actuator,string op,int256 valueMicro,string
// operator,string key) in the domain {name: "ZeroRealm Twin", version: "1"}.
// Step-ups and approvals are bound to it, and the grant carries it.
func (c Command) Hash() common.Hash {
	return eip712.New(commandTypeHash).String(c.Twin).String(c.Actuator).String(string(c.Op)).Int64(c.ValueMicro).String(c.Operator).UniqueString(c.Key).Digest(domainSeparator)
}

// TypedData is the command as eth_signTypedData_v4 JSON, for clients that
// compute its hash with standard tooling.
func (c Command) TypedData() apitypes.TypedData {
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": domainTypes(),
			"Command": {
				{Name: "twin", Type: "string"}, {Name: "actuator", Type: "string"}, {Name: "op", Type: "string"},
				{Name: "valueMicro", Type: "int256"}, {Name: "operator", Type: "string"}, {Name: "key", Type: "string"},
			},
		},
		PrimaryType: "Command",
		Domain:      typedDomain(),
		Message: apitypes.TypedDataMessage{
			"twin": c.Twin, "actuator": c.Actuator, "op": string(c.Op),
			"valueMicro": strconv.FormatInt(c.ValueMicro, 10), "operator": c.Operator, "key": c.Key,
		},
	}
}
