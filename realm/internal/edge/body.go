package edge

import (
	"net/http"
	"strconv"
)

// WriteBody writes a JSON answer encoded already, with its length: the
// answers that are built without reflection, and the first answer of a
// request written again for its retry.
func WriteBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
