package assets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/ident"
	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// MaxAmount is the largest amount one transfer may move and the largest
// balance an address may hold: scene policies see the amount as a Cedar
// Long, which is a signed 64-bit integer.
const MaxAmount = math.MaxInt64

// MaxIntentBytes bounds an encoded intent request.
const MaxIntentBytes = 16 << 10

// Uint is an unsigned 64-bit integer that JSON carries either as a decimal
// string (what wallets put in eth_signTypedData_v4 messages for uint256) or
// as a plain JSON number. It refuses signs, fractions, exponents, leading
// zeros and values that do not fit 64 bits, rather than round them.
type Uint uint64

// UnmarshalJSON implements json.Unmarshaler.
func (u *Uint) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := parseDecimal(s)
	if err != nil {
		return err
	}
	*u = Uint(v)
	return nil
}

// MarshalJSON writes a decimal string, as wallets expect for uint256.
func (u Uint) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(u), 10) + `"`), nil
}

func parseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("number %.30q has a leading zero", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("number %.30q must be decimal digits only", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number %.30q does not fit 64 bits", s)
	}
	return v, nil
}

// ParseAddress reads a 0x-prefixed 20-byte hex address. An all-lower or
// all-upper address is taken as is; a mixed-case one must carry a correct
// EIP-55 checksum, so a mistyped address is caught instead of losing assets.
func ParseAddress(s string) (common.Address, error) {
	if len(s) != 42 || s[0] != '0' || s[1] != 'x' {
		return common.Address{}, fmt.Errorf("address %.50q: want 0x followed by 40 hex digits", s)
	}
	if !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("address %.50q is not hex", s)
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return common.Address{}, fmt.Errorf("address %s fails its EIP-55 checksum (did you mean %s?)", s, a.Hex())
	}
	return a, nil
}

// TransferMessage is a Transfer as the message of its typed data.
type TransferMessage struct {
	Collection string `json:"collection"`
	AssetID    string `json:"assetId"`
	Amount     Uint   `json:"amount"`
	From       string `json:"from"`
	To         string `json:"to"`
	Nonce      Uint   `json:"nonce"`
	Deadline   Uint   `json:"deadline"`
}

// MessageOf is the wire form of t.
func MessageOf(t *Transfer) TransferMessage {
	return TransferMessage{
		Collection: t.Collection, AssetID: t.AssetID, Amount: Uint(t.Amount),
		From: t.From.Hex(), To: t.To.Hex(), Nonce: Uint(t.Nonce), Deadline: Uint(t.Deadline),
	}
}

// DomainMessage is the domain a client says it signed for. It is optional
// in requests; when present it must be the realm's, which lets the realm
// name a wrong chain instead of reporting a wrong signer.
type DomainMessage struct {
	Name              string `json:"name"`
	Version           string `json:"version"`
	ChainID           Uint   `json:"chainId"`
	VerifyingContract string `json:"verifyingContract"`
}

// TransferRequest asks the realm to apply one transfer. Signature is the
// owner's; without it the realm signs with the caller's custodial key,
// after a passkey step-up bound to the transfer's digest.
type TransferRequest struct {
	Intent    TransferMessage `json:"intent"`
	Signature string          `json:"signature,omitempty"`
	Domain    *DomainMessage  `json:"domain,omitempty"`
}

// TradeRequest asks the realm to apply both legs of a trade or neither.
// Each signature is the owner's of that leg over the trade's digest; an
// empty one means the caller's custodial key, after a step-up.
type TradeRequest struct {
	Give          TransferMessage `json:"give"`
	Take          TransferMessage `json:"take"`
	GiveSignature string          `json:"give_signature,omitempty"`
	TakeSignature string          `json:"take_signature,omitempty"`
	Domain        *DomainMessage  `json:"domain,omitempty"`
}

// TransferIntent is a decoded, well-formed TransferRequest.
type TransferIntent struct {
	Transfer  Transfer
	Signature *Signature // nil: custodial
	Domain    *Domain    // as the client claims; nil if not given
}

// TradeIntent is a decoded, well-formed TradeRequest.
type TradeIntent struct {
	Trade         Trade
	GiveSignature *Signature
	TakeSignature *Signature
	Domain        *Domain
}

// decodeStrict reads exactly one JSON object of v's shape.
func decodeStrict(data []byte, v any) error {
	if len(data) > MaxIntentBytes {
		return reject(ReasonMalformed, "request larger than %d bytes", MaxIntentBytes)
	}
	if err := strictjson.Check(data); err != nil && !errors.Is(err, strictjson.ErrSyntax) {
		return reject(ReasonMalformed, "%v", err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return reject(ReasonMalformed, "field %q must be %s", ute.Field, ute.Type)
		}
		return reject(ReasonMalformed, "%v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return reject(ReasonMalformed, "data after the JSON object")
	}
	return nil
}

// DecodeTransferRequest parses and checks the shape of a transfer request:
// ids, addresses, ranges and signature encoding. Whether the collection
// exists, who owns what and whether the signature is the owner's are the
// ledger's to judge.
func DecodeTransferRequest(data []byte) (TransferIntent, error) {
	var req TransferRequest
	if err := decodeStrict(data, &req); err != nil {
		return TransferIntent{}, err
	}
	return req.Decode()
}

// Decode checks a request already parsed from JSON.
func (req *TransferRequest) Decode() (TransferIntent, error) {
	var out TransferIntent
	var err error
	if out.Transfer, err = req.Intent.Decode("intent"); err != nil {
		return out, err
	}
	if out.Signature, err = optionalSignature(req.Signature); err != nil {
		return out, err
	}
	if out.Domain, err = req.Domain.decode(); err != nil {
		return out, err
	}
	return out, nil
}

// DecodeTradeRequest is DecodeTransferRequest for trades.
func DecodeTradeRequest(data []byte) (TradeIntent, error) {
	var req TradeRequest
	if err := decodeStrict(data, &req); err != nil {
		return TradeIntent{}, err
	}
	return req.Decode()
}

// Decode checks a trade request already parsed from JSON.
func (req *TradeRequest) Decode() (TradeIntent, error) {
	var out TradeIntent
	var err error
	if out.Trade.Give, err = req.Give.Decode("give"); err != nil {
		return out, err
	}
	if out.Trade.Take, err = req.Take.Decode("take"); err != nil {
		return out, err
	}
	if out.Trade.Give.From == out.Trade.Take.From {
		return out, reject(ReasonMalformed, "a trade's legs must come from two different owners")
	}
	if out.GiveSignature, err = optionalSignature(req.GiveSignature); err != nil {
		return out, err
	}
	if out.TakeSignature, err = optionalSignature(req.TakeSignature); err != nil {
		return out, err
	}
	if out.Domain, err = req.Domain.decode(); err != nil {
		return out, err
	}
	return out, nil
}

func optionalSignature(s string) (*Signature, error) {
	if s == "" {
		return nil, nil
	}
	sig, err := ParseSignature(s)
	if err != nil {
		return nil, err
	}
	return &sig, nil
}

func (d *DomainMessage) decode() (*Domain, error) {
	if d == nil {
		return nil, nil
	}
	c, err := ParseAddress(d.VerifyingContract)
	if err != nil {
		return nil, reject(ReasonMalformed, "domain.verifyingContract: %v", err)
	}
	return &Domain{Name: d.Name, Version: d.Version, ChainID: uint64(d.ChainID), VerifyingContract: c}, nil
}

// ValidID reports whether s can name a collection or an item: the shared
// id of internal/ident, what scene files allow and safe as a ledger
// subject token.
func ValidID(s string) bool { return ident.Valid(s) }

// Decode checks the message's shape; field names the message in errors.
func (m *TransferMessage) Decode(field string) (Transfer, error) {
	var t Transfer
	if !ValidID(m.Collection) {
		return t, reject(ReasonMalformed, "%s.collection %.70q: want 1 to 64 of a-z, 0-9 and '-'", field, m.Collection)
	}
	if m.AssetID != "" && !ValidID(m.AssetID) {
		return t, reject(ReasonMalformed, "%s.assetId %.70q: want 1 to 64 of a-z, 0-9 and '-', or empty for a fungible balance", field, m.AssetID)
	}
	if m.Amount == 0 || uint64(m.Amount) > MaxAmount {
		return t, reject(ReasonAmountRange, "%s.amount %d: want 1 to %d", field, uint64(m.Amount), uint64(MaxAmount))
	}
	if m.AssetID != "" && m.Amount != 1 {
		return t, reject(ReasonAmountRange, "%s.amount %d: a unique item moves with amount 1", field, uint64(m.Amount))
	}
	var err error
	if t.From, err = ParseAddress(m.From); err != nil {
		return t, reject(ReasonMalformed, "%s.from: %v", field, err)
	}
	if t.To, err = ParseAddress(m.To); err != nil {
		return t, reject(ReasonMalformed, "%s.to: %v", field, err)
	}
	if t.From == t.To {
		return t, reject(ReasonMalformed, "%s: from and to are the same address", field)
	}
	if t.To == (common.Address{}) {
		return t, reject(ReasonMalformed, "%s.to is the zero address", field)
	}
	t.Collection, t.AssetID, t.Amount = m.Collection, m.AssetID, uint64(m.Amount)
	t.Nonce, t.Deadline = uint64(m.Nonce), uint64(m.Deadline)
	return t, nil
}
