package realm

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Retries of transfers, trades and twin commands get the first answer
// (see package idempotency for the Idempotency-Key rules both follow; the
// marketplace's side is in realm/internal/market):
//
//   - A transfer or trade whose signed intent was applied answers 200 with
//     its receipt, byte for byte the body of the first 201, whether or not
//     the retry carries the first request's Idempotency-Key: the intent's
//     digest is its identity, and its receipt is public. If this node
//     applied it and the first answer failed before the receipt was
//     issued, the receipt is issued now (assets.Ledger.Settle).
//   - A twin command's retry with the same Idempotency-Key answers the
//     first answer's status and body, byte for byte.
//
// Either way the answer carries Idempotent-Replayed: true.

// encodeAnswer is writeJSON's encoding of v.
func encodeAnswer(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return b.Bytes()
}

// writeBody writes a JSON body encoded already.
func writeBody(w http.ResponseWriter, status int, body []byte) { edge.WriteBody(w, status, body) }

// writeReplayed writes the first answer again.
func writeReplayed(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Idempotent-Replayed", "true")
	writeBody(w, status, body)
}
