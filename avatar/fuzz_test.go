package avatar

import (
	"context"
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// The fuzz targets feed arbitrary bytes to the parsing and verification a
// finish runs before it touches the store. Bad input must come back as
// ErrInvalidInput or ErrVerification, never as a panic.

func FuzzFinishRegistrationJSON(f *testing.F) {
	s := newTestService(f, Config{})
	ctx := context.Background()
	c, err := s.BeginRegistration(ctx, Registration{Name: "fuzz", DisplayName: "Fuzz"}, "")
	if err != nil {
		f.Fatal(err)
	}
	st, err := s.takeCeremony(ctx, c.ID, kindRegistration)
	if err != nil {
		f.Fatal(err)
	}
	for _, synced := range []bool{false, true} {
		auth := webauthntest.New()
		auth.Synced = synced
		resp, err := auth.Register(c.Options, testOrigin)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	user := &webauthnUser{id: st.AvatarID, name: st.Name, displayName: st.DisplayName}
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := parseRegistrationJSON(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("parseRegistrationJSON error = %v, want ErrInvalidInput", err)
			}
			return
		}
		if _, err := s.wa.CreateCredential(user, st.Session, parsed); err != nil {
			if err := verificationError("registration", err); !errors.Is(err, ErrVerification) {
				t.Fatalf("verification error = %v", err)
			}
		}
	})
}

func FuzzFinishLoginJSON(f *testing.F) {
	s := newTestService(f, Config{})
	ctx := context.Background()
	auth := webauthntest.New()
	a, _ := register(f, s, auth, "fuzz")
	named, err := s.BeginLogin(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	disc, err := s.BeginLogin(ctx, "")
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []Ceremony{named, disc} {
		resp, err := auth.Assert(c.Options, testOrigin)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp)
	}
	namedSt, err := s.takeCeremony(ctx, named.ID, kindLogin)
	if err != nil {
		f.Fatal(err)
	}
	discSt, err := s.takeCeremony(ctx, disc.ID, kindLogin)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Add([]byte(`null`))
	user := userOf(a)
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := parseAssertionJSON(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("parseAssertionJSON error = %v, want ErrInvalidInput", err)
			}
			return
		}
		// Verification may succeed for a seed; it must never panic.
		_, _ = s.wa.ValidateLogin(user, namedSt.Session, parsed)
		_, _, _ = s.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			return user, nil
		}, discSt.Session, parsed)
	})
}
