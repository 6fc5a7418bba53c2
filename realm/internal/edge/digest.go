package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Action digests bind a passkey step-up to exactly one action: the client
// sends the digest of the action it is about to take, and the action
// spends the proof recorded for that digest. Every API that gates an
// action with a step-up reads and writes them the same way.

// ParseDigest reads an action digest: empty, or 0x and 64 hex digits.
func ParseDigest(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	h, ok := strings.CutPrefix(s, "0x")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, BadRequest("action_digest must be 0x followed by 64 hex digits (a 32-byte digest)")
	}
	return b, nil
}

// DigestHex is how a digest is published: 0x and lower-case hex, or ""
// for none.
func DigestHex(d []byte) string {
	if len(d) == 0 {
		return ""
	}
	return "0x" + hex.EncodeToString(d)
}

// ActionDigest is SHA-256(domain || 0x00 || subject): the domain names the
// action and its version, so a step-up for one action never fits another.
func ActionDigest(domain string, subject []byte) []byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write(subject)
	return h.Sum(nil)
}
