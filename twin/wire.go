package twin

import (
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
)

// Grants and acknowledgements are encoded by hand: every gated command
// encodes one of each, and reflection made up most of their cost. The
// output is byte for byte what encoding/json writes for the wire structs
// (the tests compare them), so decoders elsewhere see no difference.

// appendJSONString appends s as encoding/json writes it. Ids and most
// values are plain ASCII and are copied; anything else goes through
// encoding/json for its escaping rules.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendJSONHash(b []byte, h common.Hash) []byte {
	b = append(b, `"0x`...)
	b = hex.AppendEncode(b, h[:])
	return append(b, '"')
}

func appendJSONSignature(b []byte, s Signature) []byte {
	b = append(b, `"0x`...)
	b = hex.AppendEncode(b, s[:])
	return append(b, '"')
}

func appendGrant(b []byte, g *Grant) []byte {
	b = append(b, `{"twin":`...)
	b = appendJSONString(b, g.Twin)
	b = append(b, `,"actuator":`...)
	b = appendJSONString(b, g.Actuator)
	b = append(b, `,"op":`...)
	b = appendJSONString(b, string(g.Op))
	b = append(b, `,"valueMicro":`...)
	b = strconv.AppendInt(b, g.ValueMicro, 10)
	b = append(b, `,"command":`...)
	b = appendJSONHash(b, g.Command)
	b = append(b, `,"nonce":`...)
	b = strconv.AppendUint(b, g.Nonce, 10)
	b = append(b, `,"notBefore":`...)
	b = strconv.AppendUint(b, g.NotBefore, 10)
	b = append(b, `,"expiry":`...)
	b = strconv.AppendUint(b, g.Expiry, 10)
	b = append(b, `,"operator":`...)
	b = appendJSONString(b, g.Operator)
	b = append(b, `,"session":`...)
	b = appendJSONString(b, g.Session)
	b = append(b, `,"approvers":`...)
	b = appendJSONStrings(b, g.Approvers)
	b = append(b, `,"owner":`...)
	b = appendJSONString(b, g.Owner)
	b = append(b, `,"delegations":`...)
	b = appendJSONStrings(b, g.Delegations)
	return append(b, '}')
}

// appendJSONStrings appends a JSON array of strings; nil is [].
func appendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

func appendAck(b []byte, a *Ack) []byte {
	b = append(b, `{"twin":`...)
	b = appendJSONString(b, a.Twin)
	b = append(b, `,"actuator":`...)
	b = appendJSONString(b, a.Actuator)
	b = append(b, `,"command":`...)
	b = appendJSONHash(b, a.Command)
	b = append(b, `,"nonce":`...)
	b = strconv.AppendUint(b, a.Nonce, 10)
	b = append(b, `,"result":`...)
	b = appendJSONString(b, string(a.Result))
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, string(a.Reason))
	if a.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, a.Detail)
	}
	b = append(b, `,"valueMicro":`...)
	b = strconv.AppendInt(b, a.ValueMicro, 10)
	b = append(b, `,"targetMicro":`...)
	b = strconv.AppendInt(b, a.TargetMicro, 10)
	b = append(b, `,"at":`...)
	b = strconv.AppendUint(b, a.At, 10)
	return append(b, '}')
}
