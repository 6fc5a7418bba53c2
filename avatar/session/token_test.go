package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestParseTokenRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		token, hash, id := newToken()
		gotHash, gotID, ok := parseToken(token)
		if !ok || gotHash != hash || gotID != id {
			t.Fatalf("parseToken(newToken()) = %x, %q, %v; want %x, %q, true", gotHash, gotID, ok, hash, id)
		}
		if !validID(id) {
			t.Fatalf("newToken ID = %q, want %d lowercase hex characters", id, idLen)
		}
		if seen[id] {
			t.Fatalf("newToken repeated ID %q", id)
		}
		seen[id] = true
	}
}

// FuzzAuthenticateToken feeds Authenticate arbitrary bearer strings. It
// must never panic; whatever parseToken refuses must be ErrInvalidSession
// without store access (the connection is closed, so an access would fail
// differently); whatever it accepts must be a canonical token whose hash
// and ID derive from its secret, and its error must not echo it.
func FuzzAuthenticateToken(f *testing.F) {
	m, nc := newTestManager(f, Config{})
	good, s := mustCreate(f, m, "av_fuzz")
	other, _, _ := newToken()
	nc.Close()

	for _, seed := range []string{
		good,
		other,
		tamper(good, TokenLen/2),
		good[:TokenLen-1],
		good + "A",
		good[:TokenLen-1] + "=",
		good[:TokenLen-1] + nonCanonicalTail(good[TokenLen-1]),
		"Bearer " + good,
		TokenPrefix,
		TokenPrefix + s.ID,
		s.ID,
		"",
		strings.Repeat("\x00", TokenLen),
		TokenPrefix + strings.Repeat("_", 43),
		TokenPrefix + strings.Repeat("é", 21) + "A",
	} {
		f.Add(seed)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		_, err := m.Authenticate(ctx, token)
		hash, id, ok := parseToken(token)
		if !ok {
			if !errors.Is(err, ErrInvalidSession) {
				t.Fatalf("Authenticate(%q) of a malformed token: error = %v, want ErrInvalidSession without store access", token, err)
			}
			return
		}
		secret, decErr := tokenEncoding.DecodeString(token[len(TokenPrefix):])
		if decErr != nil || len(secret) != tokenSecretBytes || TokenPrefix+tokenEncoding.EncodeToString(secret) != token {
			t.Fatalf("parseToken(%q) accepted a non-canonical token", token)
		}
		if hash != sha256.Sum256(secret) || id != sessionID(hash) {
			t.Fatalf("parseToken(%q) = %x, %q; want the secret's hash and ID", token, hash, id)
		}
		if err == nil || errors.Is(err, ErrInvalidSession) {
			t.Fatalf("Authenticate(%q) of a well-formed token on a closed connection: error = %v, want a store error", token, err)
		}
		if strings.Contains(err.Error(), token[len(TokenPrefix):]) {
			t.Fatalf("Authenticate error %q contains the token", err)
		}
	})
}
