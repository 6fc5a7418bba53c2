package edge

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// An answer kept for Idempotency-Key retries (see package idempotency) is
// encoded once; the first answer and every replay send the same bytes.

// EncodeJSON is WriteJSON's encoding of v.
func EncodeJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return b.Bytes()
}

// WriteBody writes a JSON body encoded already.
func WriteBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteReplayed writes a first answer again, marked as such.
func WriteReplayed(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Idempotent-Replayed", "true")
	WriteBody(w, status, body)
}
