package twin

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
)

// The gateway decodes a grant and the realm an acknowledgement for every
// command, so both have a decoder written for their one shape. It is
// stricter than encoding/json, never looser (the fuzz targets check that
// whatever it accepts, encoding/json with unknown fields disallowed
// accepts with the same value): every field present exactly once, keys
// matched exactly, no nulls, integers only where integers belong, valid
// UTF-8, and nothing after the object.

type wireReader struct {
	data []byte
	pos  int
}

var errWireEnd = errors.New("unexpected end of data")

func (r *wireReader) fail(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", r.pos, fmt.Sprintf(format, args...))
}

func (r *wireReader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// expect consumes c after optional whitespace.
func (r *wireReader) expect(c byte) error {
	r.skipSpace()
	if r.pos >= len(r.data) {
		return errWireEnd
	}
	if r.data[r.pos] != c {
		return r.fail("want %q, found %q", c, r.data[r.pos])
	}
	r.pos++
	return nil
}

// next reports whether another member follows in an object or array that
// has had at least one; it consumes the ',' or the closing byte.
func (r *wireReader) next(closing byte) (bool, error) {
	r.skipSpace()
	if r.pos >= len(r.data) {
		return false, errWireEnd
	}
	switch r.data[r.pos] {
	case ',':
		r.pos++
		return true, nil
	case closing:
		r.pos++
		return false, nil
	}
	return false, r.fail("want ',' or %q, found %q", closing, r.data[r.pos])
}

// object calls member for each key of an object until its end. The key
// may alias the data: a member must not keep it.
func (r *wireReader) object(member func(key []byte) error) error {
	if err := r.expect('{'); err != nil {
		return err
	}
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == '}' {
		r.pos++
		return nil
	}
	for {
		key, err := r.strBytes()
		if err != nil {
			return err
		}
		if err := r.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		more, err := r.next('}')
		if err != nil || !more {
			return err
		}
	}
}

func (r *wireReader) str() (string, error) {
	b, err := r.strBytes()
	return string(b), err
}

// strBytes reads a string as bytes: for the common case without escapes
// a slice of the data, so that keys and hex values cost no allocation.
func (r *wireReader) strBytes() ([]byte, error) {
	r.skipSpace()
	if r.pos >= len(r.data) {
		return nil, errWireEnd
	}
	if r.data[r.pos] != '"' {
		return nil, r.fail("want a string")
	}
	r.pos++
	start := r.pos
	for r.pos < len(r.data) {
		c := r.data[r.pos]
		switch {
		case c == '"':
			s := r.data[start:r.pos]
			r.pos++
			if !utf8.Valid(s) {
				return nil, r.fail("string is not valid UTF-8")
			}
			return s, nil
		case c == '\\':
			return r.escapedStr(start)
		case c < 0x20:
			return nil, r.fail("control character in string")
		}
		r.pos++
	}
	return nil, errWireEnd
}

func (r *wireReader) escapedStr(start int) ([]byte, error) {
	out := append([]byte(nil), r.data[start:r.pos]...)
	for r.pos < len(r.data) {
		c := r.data[r.pos]
		switch {
		case c == '"':
			r.pos++
			if !utf8.Valid(out) {
				return nil, r.fail("string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return nil, r.fail("control character in string")
		case c != '\\':
			out = append(out, c)
			r.pos++
			continue
		}
		if r.pos+1 >= len(r.data) {
			return nil, errWireEnd
		}
		e := r.data[r.pos+1]
		r.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			c1, err := r.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(c1) {
				// Only a valid pair makes a character; encoding/json turns a
				// lone half into U+FFFD, which is refused here.
				if r.pos+6 > len(r.data) || r.data[r.pos] != '\\' || r.data[r.pos+1] != 'u' {
					return nil, r.fail("lone surrogate in string")
				}
				r.pos += 2
				c2, err := r.hex4()
				if err != nil {
					return nil, err
				}
				if c1 = utf16.DecodeRune(c1, c2); c1 == utf8.RuneError {
					return nil, r.fail("invalid surrogate pair in string")
				}
			}
			out = utf8.AppendRune(out, c1)
		default:
			return nil, r.fail("invalid escape \\%c", e)
		}
	}
	return nil, errWireEnd
}

func (r *wireReader) hex4() (rune, error) {
	if r.pos+4 > len(r.data) {
		return 0, errWireEnd
	}
	v, err := strconv.ParseUint(string(r.data[r.pos:r.pos+4]), 16, 16)
	if err != nil {
		return 0, r.fail("invalid \\u escape")
	}
	r.pos += 4
	return rune(v), nil
}

// number returns the bytes of a JSON integer: an optional '-' and digits
// without leading zeros. Fractions and exponents are refused.
func (r *wireReader) number() ([]byte, error) {
	r.skipSpace()
	start := r.pos
	if r.pos < len(r.data) && r.data[r.pos] == '-' {
		r.pos++
	}
	digits := r.pos
	for r.pos < len(r.data) && '0' <= r.data[r.pos] && r.data[r.pos] <= '9' {
		r.pos++
	}
	switch {
	case r.pos == digits:
		return nil, r.fail("want an integer")
	case r.data[digits] == '0' && r.pos-digits > 1:
		return nil, r.fail("integer with a leading zero")
	case r.pos < len(r.data) && (r.data[r.pos] == '.' || r.data[r.pos] == 'e' || r.data[r.pos] == 'E'):
		return nil, r.fail("want an integer, not a fraction")
	}
	return r.data[start:r.pos], nil
}

// magnitude is the value of n's digits, false if it exceeds max. n is
// what number returned, its sign left to the caller.
func magnitude(digits []byte, max uint64) (uint64, bool) {
	var v uint64
	for _, c := range digits {
		d := uint64(c - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func (r *wireReader) int64() (int64, error) {
	n, err := r.number()
	if err != nil {
		return 0, err
	}
	if n[0] == '-' {
		m, ok := magnitude(n[1:], 1<<63)
		if !ok {
			return 0, r.fail("integer out of range")
		}
		return int64(-m), nil // -(1<<63) wraps to itself, the minimum
	}
	m, ok := magnitude(n, 1<<63-1)
	if !ok {
		return 0, r.fail("integer out of range")
	}
	return int64(m), nil
}

func (r *wireReader) uint64() (uint64, error) {
	n, err := r.number()
	if err != nil {
		return 0, err
	}
	if n[0] == '-' {
		return 0, r.fail("want an unsigned integer in range")
	}
	v, ok := magnitude(n, math.MaxUint64)
	if !ok {
		return 0, r.fail("want an unsigned integer in range")
	}
	return v, nil
}

func (r *wireReader) hash() (common.Hash, error) {
	var h common.Hash
	s, err := r.strBytes()
	if err != nil {
		return h, err
	}
	if len(s) != 66 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return h, r.fail("hash must be 0x and 64 hex digits")
	}
	if _, err := hex.Decode(h[:], s[2:]); err != nil {
		return h, r.fail("hash must be 0x and 64 hex digits")
	}
	return h, nil
}

func (r *wireReader) strs() ([]string, error) {
	if err := r.expect('['); err != nil {
		return nil, err
	}
	out := []string{}
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == ']' {
		r.pos++
		return out, nil
	}
	for {
		if len(out) >= MaxApprovers {
			return nil, r.fail("more than %d entries", MaxApprovers)
		}
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		more, err := r.next(']')
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
	}
}

func (r *wireReader) end() error {
	r.skipSpace()
	if r.pos != len(r.data) {
		return r.fail("data after the JSON object")
	}
	return nil
}

// fields tracks which of a message's keys were seen: each exactly once.
type fields struct {
	names []string
	seen  uint32
}

func (f *fields) see(key []byte) (int, error) {
	for i, n := range f.names {
		if n == string(key) {
			if f.seen&(1<<i) != 0 {
				return 0, fmt.Errorf("field %q appears twice", key)
			}
			f.seen |= 1 << i
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown field %q", key)
}

// missing names the first required field not seen; optional is a bit set.
func (f *fields) missing(optional uint32) error {
	for i, n := range f.names {
		if f.seen&(1<<i) == 0 && optional&(1<<i) == 0 {
			return fmt.Errorf("field %q is missing", n)
		}
	}
	return nil
}

var grantFields = []string{"twin", "actuator", "op", "valueMicro", "command", "nonce", "notBefore", "expiry", "operator", "session", "approvers", "owner", "delegations"}

// decodeGrantWire reads {"grant": {...}, "signature": "0x..."}.
func decodeGrantWire(data []byte) (Grant, string, error) {
	var g Grant
	sig, err := decodeSignedWire(data, "grant", grantFields, 0, func(r *wireReader, i int) error {
		var err error
		switch i {
		case 0:
			g.Twin, err = r.str()
		case 1:
			g.Actuator, err = r.str()
		case 2:
			var op string
			op, err = r.str()
			g.Op = Op(op)
		case 3:
			g.ValueMicro, err = r.int64()
		case 4:
			g.Command, err = r.hash()
		case 5:
			g.Nonce, err = r.uint64()
		case 6:
			g.NotBefore, err = r.uint64()
		case 7:
			g.Expiry, err = r.uint64()
		case 8:
			g.Operator, err = r.str()
		case 9:
			g.Session, err = r.str()
		case 10:
			g.Approvers, err = r.strs()
		case 11:
			g.Owner, err = r.str()
		case 12:
			g.Delegations, err = r.strs()
		}
		return err
	})
	return g, sig, err
}

var ackFields = []string{"twin", "actuator", "command", "nonce", "result", "reason", "detail", "valueMicro", "targetMicro", "at"}

// decodeAckWire reads {"ack": {...}, "signature": "0x..."}. Only detail,
// which the gateway leaves out when empty, is optional.
func decodeAckWire(data []byte) (Ack, string, error) {
	var a Ack
	sig, err := decodeSignedWire(data, "ack", ackFields, 1<<6, func(r *wireReader, i int) error {
		var (
			s   string
			err error
		)
		switch i {
		case 0:
			a.Twin, err = r.str()
		case 1:
			a.Actuator, err = r.str()
		case 2:
			a.Command, err = r.hash()
		case 3:
			a.Nonce, err = r.uint64()
		case 4:
			s, err = r.str()
			a.Result = Result(s)
		case 5:
			s, err = r.str()
			a.Reason = Reason(s)
		case 6:
			a.Detail, err = r.str()
		case 7:
			a.ValueMicro, err = r.int64()
		case 8:
			a.TargetMicro, err = r.int64()
		case 9:
			a.At, err = r.uint64()
		}
		return err
	})
	return a, sig, err
}

// decodeSignedWire reads the envelope every signed message travels in,
// {"<name>": {...}, "signature": "0x..."}, strictly: each key once, no
// unknown keys, every field of the message present unless optional (a bit
// set over names). field reads the value of names[i].
func decodeSignedWire(data []byte, name string, names []string, optional uint32, field func(r *wireReader, i int) error) (string, error) {
	var sig string
	r := &wireReader{data: data}
	top := fields{names: []string{name, "signature"}}
	err := r.object(func(key []byte) error {
		i, err := top.see(key)
		if err != nil {
			return err
		}
		if i == 1 {
			sig, err = r.str()
			return err
		}
		f := fields{names: names}
		if err := r.object(func(key []byte) error {
			i, err := f.see(key)
			if err != nil {
				return err
			}
			return field(r, i)
		}); err != nil {
			return err
		}
		return f.missing(optional)
	})
	if err == nil {
		err = top.missing(0)
	}
	if err == nil {
		err = r.end()
	}
	return sig, err
}
