package avatar

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// The fuzz targets feed arbitrary bytes to the parsing and verification a
// finish runs before it touches the store. Bad input must come back as
// ErrInvalidInput or ErrVerification, never as a panic. They run the
// relying party without a store: a server in the fuzz worker would make
// coverage nondeterministic.

func fuzzRelyingParty(f *testing.F) *webauthn.WebAuthn {
	f.Helper()
	_, wa, err := configure(Config{})
	if err != nil {
		f.Fatal(err)
	}
	return wa
}

func mustJSON(f *testing.F, v any) []byte {
	f.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzFinishRegistrationJSON(f *testing.F) {
	wa := fuzzRelyingParty(f)
	user := &webauthnUser{id: newAvatarID(), name: "fuzz", displayName: "Fuzz"}
	creation, session, err := wa.BeginRegistration(user)
	if err != nil {
		f.Fatal(err)
	}
	for _, synced := range []bool{false, true} {
		auth := webauthntest.New()
		auth.Synced = synced
		resp, err := auth.Register(mustJSON(f, creation), testOrigin)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := parseRegistrationJSON(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("parseRegistrationJSON error = %v, want ErrInvalidInput", err)
			}
			return
		}
		// The seeds verify; anything else must fail cleanly.
		_, _ = wa.CreateCredential(user, *session, parsed)
	})
}

func FuzzFinishLoginJSON(f *testing.F) {
	wa := fuzzRelyingParty(f)
	auth := webauthntest.New()
	user := &webauthnUser{id: newAvatarID(), name: "fuzz", displayName: "Fuzz"}
	creation, session, err := wa.BeginRegistration(user)
	if err != nil {
		f.Fatal(err)
	}
	resp, err := auth.Register(mustJSON(f, creation), testOrigin)
	if err != nil {
		f.Fatal(err)
	}
	parsedReg, err := parseRegistrationJSON(resp)
	if err != nil {
		f.Fatal(err)
	}
	wc, err := wa.CreateCredential(user, *session, parsedReg)
	if err != nil {
		f.Fatal(err)
	}
	user.creds = []Credential{{ID: wc.ID, PublicKey: wc.PublicKey, AttestationFormat: wc.AttestationFormat, UserVerified: true}}

	a := &Avatar{ID: user.id, Name: user.name, DisplayName: user.displayName, Credentials: user.creds}
	named, namedSession, err := wa.BeginLogin(user, webauthn.WithAllowedCredentials(descriptors(a)))
	if err != nil {
		f.Fatal(err)
	}
	disc, discSession, err := wa.BeginDiscoverableLogin()
	if err != nil {
		f.Fatal(err)
	}
	for _, opts := range []any{named, disc} {
		resp, err := auth.Assert(mustJSON(f, opts), testOrigin)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp)
	}
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := parseAssertionJSON(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("parseAssertionJSON error = %v, want ErrInvalidInput", err)
			}
			return
		}
		_, _ = wa.ValidateLogin(user, *namedSession, parsed)
		_, _, _ = wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			return user, nil
		}, *discSession, parsed)
	})
}
