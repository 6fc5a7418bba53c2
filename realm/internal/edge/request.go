package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"

	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// MaxJSONBody bounds every JSON request body. A WebAuthn credential with a
// full attestation certificate chain is a few KiB; 64 KiB leaves room and
// still refuses anything meant to exhaust memory.
const MaxJSONBody = 64 << 10

// DecodeJSON reads a JSON object of exactly the shape of v: unknown fields,
// duplicate members, invalid UTF-8, trailing data, a wrong content type and
// oversized bodies are refused with a problem that says which.
func DecodeJSON(w http.ResponseWriter, req *http.Request, v any) error {
	if ct := req.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &Error{Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxJSONBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("body larger than %d bytes", MaxJSONBody)}
		}
		return &Error{Status: http.StatusBadRequest, Detail: "could not read the body", Err: err}
	}
	return DecodeJSONBytes(body, v)
}

// DecodeJSONBytes is DecodeJSON's parser, separate so it can be fuzzed.
func DecodeJSONBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	// encoding/json lets the last of two same-named members win and
	// replaces invalid UTF-8; refuse both before it decodes.
	if err := strictjson.Check(body); err != nil && !errors.Is(err, strictjson.ErrSyntax) {
		return BadRequest("malformed JSON body: " + err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadRequest("malformed JSON body: " + jsonErrorDetail(err))
	}
	if dec.More() {
		return BadRequest("malformed JSON body: data after the object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("malformed JSON body: data after the object")
	}
	return nil
}

func jsonErrorDetail(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return fmt.Sprintf("field %q must be %s", typeErr.Field, typeErr.Type)
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	default:
		// DisallowUnknownFields reports `json: unknown field "x"`.
		return err.Error()
	}
}

// CheckOrigin refuses a browser request from a page of another origin. A
// request without an Origin header is not from a browser's cross-site
// context (browsers send Origin on every POST and WebSocket handshake), so
// it passes here and meets the other checks.
func (e *Edge) CheckOrigin(req *http.Request) error {
	origin := req.Header.Get("Origin")
	if origin == "" || slices.Contains(e.cfg.Origins(), origin) {
		return nil
	}
	return &Error{Status: http.StatusForbidden, Detail: fmt.Sprintf("origin %q is not allowed; the realm accepts %v", origin, e.cfg.Origins())}
}
