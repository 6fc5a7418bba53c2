package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

const (
	// TokenPrefix starts every session token so that secret scanners can
	// recognise one that leaked into a log, a paste or a repository.
	TokenPrefix = "zrs_"

	tokenSecretBytes = 32
	// TokenLen is the length of every well-formed token.
	TokenLen = len(TokenPrefix) + 43 // 43 = unpadded base64 of 32 bytes

	// idBytes of the token hash make the public session ID: 128 bits keep
	// IDs collision-free across every session a realm will ever issue.
	idBytes = 16
	idLen   = 2 * idBytes

	csrfBytes = 32
)

// tokenEncoding is strict so that each secret has exactly one spelling:
// a token with non-zero padding bits is refused rather than mapped to the
// same secret as its canonical twin.
var tokenEncoding = base64.RawURLEncoding.Strict()

type tokenHash [sha256.Size]byte

// newToken returns a fresh token, its hash and its session ID.
func newToken() (token string, hash tokenHash, id string) {
	var secret [tokenSecretBytes]byte
	rand.Read(secret[:]) // never fails: crypto/rand aborts the program rather than return weak bytes
	token = TokenPrefix + tokenEncoding.EncodeToString(secret[:])
	hash = sha256.Sum256(secret[:])
	return token, hash, sessionID(hash)
}

// parseToken checks the token's shape and derives its hash and session ID.
// It does no I/O, so Authenticate can refuse malformed input for free.
func parseToken(token string) (hash tokenHash, id string, ok bool) {
	if len(token) != TokenLen || token[:len(TokenPrefix)] != TokenPrefix {
		return hash, "", false
	}
	var encoded [TokenLen - len(TokenPrefix)]byte // on the stack: the hot path allocates nothing here
	copy(encoded[:], token[len(TokenPrefix):])
	var secret [tokenSecretBytes + 2]byte // room for the decoder's worst-case estimate
	n, err := tokenEncoding.Decode(secret[:], encoded[:])
	if err != nil || n != tokenSecretBytes {
		return hash, "", false
	}
	hash = sha256.Sum256(secret[:n])
	return hash, sessionID(hash), true
}

func sessionID(hash tokenHash) string { return hex.EncodeToString(hash[:idBytes]) }

// validID reports whether id has the shape of a session ID, so that
// lookups by a caller-supplied ID never send junk to the store.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func newCSRF() string {
	var b [csrfBytes]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
