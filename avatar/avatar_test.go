package avatar

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

func TestPasskeyLifecycle(t *testing.T) {
	s := newTestService(t, Config{})
	ctx := context.Background()
	auth := webauthntest.New()

	a, cred := register(t, s, auth, "alice")
	if a.Name != "alice" || a.DisplayName != "Test alice" || !strings.HasPrefix(a.ID, "av_") {
		t.Errorf("FinishRegistration avatar = %+v", a)
	}
	if got, want := a.Roles, []string{"visitor"}; !equalStrings(got, want) {
		t.Errorf("Roles = %q, want %q", got, want)
	}
	if cred.AttestationFormat != "none" || cred.Attested || !cred.UserVerified || cred.BackupEligible {
		t.Errorf("credential = %+v, want none attestation, not attested, UV, not backup eligible", cred)
	}
	if got := cred.DeviceAssurance(); got != AssuranceDeviceBound {
		t.Errorf("DeviceAssurance() = %v, want %v", got, AssuranceDeviceBound)
	}

	disc := login(t, s, auth, "")
	if disc.Avatar.ID != a.ID || !bytes.Equal(disc.Credential.ID, cred.ID) || !disc.UserVerified {
		t.Errorf("discoverable FinishLogin = avatar %s credential %x UV %v, want %s %x true", disc.Avatar.ID, disc.Credential.ID, disc.UserVerified, a.ID, cred.ID)
	}
	named := login(t, s, auth, "alice")
	if named.Avatar.ID != a.ID {
		t.Errorf("FinishLogin by name: avatar %s, want %s", named.Avatar.ID, a.ID)
	}
	if named.Credential.SignCount != 2 {
		t.Errorf("SignCount after two sign-ins = %d, want 2", named.Credential.SignCount)
	}

	byName, err := s.ByName(ctx, "alice")
	if err != nil || byName.ID != a.ID {
		t.Fatalf("ByName(alice) = %v, %v; want %s", byName, err, a.ID)
	}
	if _, err := s.ByName(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByName(bob) error = %v, want ErrNotFound", err)
	}

	bob, _ := register(t, s, webauthntest.New(), "bob")
	digest := sha256.Sum256([]byte("transfer sword to bob"))
	other := sha256.Sum256([]byte("transfer castle to bob"))

	stepUp := func(digest []byte) (string, []byte) {
		t.Helper()
		c, err := s.BeginStepUp(ctx, a.ID, digest)
		if err != nil {
			t.Fatalf("BeginStepUp: %v", err)
		}
		resp, err := auth.Assert(c.Options, testOrigin)
		if err != nil {
			t.Fatalf("Assert: %v", err)
		}
		return c.ID, resp
	}

	id, resp := stepUp(digest[:])
	as, err := s.FinishStepUp(ctx, id, a.ID, digest[:], resp)
	if err != nil {
		t.Fatalf("FinishStepUp: %v", err)
	}
	if !bytes.Equal(as.ActionDigest, digest[:]) || !as.UserVerified || as.Avatar.ID != a.ID {
		t.Errorf("FinishStepUp = digest %x UV %v avatar %s, want %x true %s", as.ActionDigest, as.UserVerified, as.Avatar.ID, digest, a.ID)
	}

	t.Run("other digest", func(t *testing.T) {
		id, resp := stepUp(digest[:])
		before := snapshot(t, s)
		if _, err := s.FinishStepUp(ctx, id, a.ID, other[:], resp); !errors.Is(err, ErrCeremonyMismatch) {
			t.Errorf("FinishStepUp with another digest: error = %v, want ErrCeremonyMismatch", err)
		}
		// The same assertion for a ceremony of the other digest: its
		// challenge is bound to the first digest.
		c, err := s.BeginStepUp(ctx, a.ID, other[:])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishStepUp(ctx, c.ID, a.ID, other[:], resp); !errors.Is(err, ErrVerification) {
			t.Errorf("FinishStepUp of an assertion bound to another digest: error = %v, want ErrVerification", err)
		}
		sameState(t, "refused step-ups", before, snapshot(t, s))
	})
	t.Run("other avatar", func(t *testing.T) {
		id, resp := stepUp(digest[:])
		before := snapshot(t, s)
		if _, err := s.FinishStepUp(ctx, id, bob.ID, digest[:], resp); !errors.Is(err, ErrCeremonyMismatch) {
			t.Errorf("FinishStepUp for another avatar: error = %v, want ErrCeremonyMismatch", err)
		}
		// Bob's own step-up answered with alice's credential.
		c, err := s.BeginStepUp(ctx, bob.ID, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		opts := editOptions(t, c.Options, func(pk map[string]any) { delete(pk, "allowCredentials") })
		resp, err = auth.Assert(opts, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishStepUp(ctx, c.ID, bob.ID, digest[:], resp); !errors.Is(err, ErrVerification) {
			t.Errorf("FinishStepUp with another avatar's credential: error = %v, want ErrVerification", err)
		}
		sameState(t, "refused step-ups", before, snapshot(t, s))
	})
	t.Run("no digest", func(t *testing.T) {
		id, resp := stepUp(nil)
		if _, err := s.FinishStepUp(ctx, id, a.ID, nil, resp); err != nil {
			t.Errorf("FinishStepUp without a digest: %v", err)
		}
		if _, err := s.BeginStepUp(ctx, a.ID, []byte("short")); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("BeginStepUp with a 5-byte digest: error = %v, want ErrInvalidInput", err)
		}
	})
	t.Run("second passkey", func(t *testing.T) {
		c, err := s.BeginRegistration(ctx, Registration{}, a.ID)
		if err != nil {
			t.Fatalf("BeginRegistration(existing): %v", err)
		}
		// The authenticator already holding a listed credential refuses.
		if _, err := auth.Register(c.Options, testOrigin); err == nil {
			t.Errorf("Register with the avatar's credential excluded: no error")
		}
		phone := webauthntest.New()
		resp, err := phone.Register(c.Options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		got, cred2, err := s.FinishRegistration(ctx, c.ID, resp)
		if err != nil {
			t.Fatalf("FinishRegistration(existing): %v", err)
		}
		if got.ID != a.ID || len(got.Credentials) != 2 {
			t.Errorf("avatar after a second passkey: id %s, %d credentials; want %s, 2", got.ID, len(got.Credentials), a.ID)
		}
		if as := login(t, s, phone, "alice"); !bytes.Equal(as.Credential.ID, cred2.ID) {
			t.Errorf("sign-in with the second passkey used credential %x, want %x", as.Credential.ID, cred2.ID)
		}
		if err := s.DeleteCredential(ctx, a.ID, cred.ID); err != nil {
			t.Fatalf("DeleteCredential: %v", err)
		}
		if err := s.DeleteCredential(ctx, a.ID, cred2.ID); !errors.Is(err, ErrLastCredential) {
			t.Errorf("DeleteCredential(last) error = %v, want ErrLastCredential", err)
		}
		if err := s.DeleteCredential(ctx, a.ID, cred.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteCredential(removed) error = %v, want ErrNotFound", err)
		}
		// The removed passkey no longer signs in.
		id, resp := beginLogin(t, s, auth, "")
		if _, err := s.FinishLogin(ctx, id, resp); !errors.Is(err, ErrVerification) {
			t.Errorf("FinishLogin with a removed credential: error = %v, want ErrVerification", err)
		}
	})
	t.Run("roles", func(t *testing.T) {
		if err := s.SetRoles(ctx, a.ID, []string{"admin", "visitor", "admin"}); err != nil {
			t.Fatalf("SetRoles: %v", err)
		}
		got, err := s.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"admin", "visitor"}; !equalStrings(got.Roles, want) {
			t.Errorf("Roles after SetRoles = %q, want %q", got.Roles, want)
		}
		if err := s.SetRoles(ctx, a.ID, []string{"Admin"}); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("SetRoles(Admin) error = %v, want ErrInvalidInput", err)
		}
		if err := s.SetRoles(ctx, newAvatarID(), []string{"admin"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetRoles(unknown avatar) error = %v, want ErrNotFound", err)
		}
	})
}

func equalStrings(a, b []string) bool {
	return len(a) == len(b) && strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

func TestFinishLoginRefusals(t *testing.T) {
	clk := newClock()
	s := newTestService(t, Config{Now: clk.Now})
	ctx := context.Background()
	auth := webauthntest.New()
	a, cred := register(t, s, auth, "alice")

	type attempt struct {
		ceremony string
		resp     []byte
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T) attempt
		finish  func(attempt) error
		want    error
	}{
		{"finished twice", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			if _, err := s.FinishLogin(ctx, id, resp); err != nil {
				t.Fatalf("first FinishLogin: %v", err)
			}
			return attempt{id, resp}
		}, nil, ErrCeremonyNotFound},
		{"replayed to a new ceremony", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			if _, err := s.FinishLogin(ctx, id, resp); err != nil {
				t.Fatalf("first FinishLogin: %v", err)
			}
			c, err := s.BeginLogin(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			return attempt{c.ID, resp}
		}, nil, ErrVerification},
		{"wrong origin", func(t *testing.T) attempt {
			c, _ := s.BeginLogin(ctx, "")
			resp, err := auth.Assert(c.Options, "https://evil.example")
			if err != nil {
				t.Fatal(err)
			}
			return attempt{c.ID, resp}
		}, nil, ErrVerification},
		{"wrong RP id", func(t *testing.T) attempt {
			c, _ := s.BeginLogin(ctx, "alice")
			evil := auth.Clone()
			if err := evil.MoveCredential(cred.ID, "evil.example"); err != nil {
				t.Fatal(err)
			}
			opts := editOptions(t, c.Options, func(pk map[string]any) { pk["rpId"] = "evil.example" })
			resp, err := evil.Assert(opts, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			return attempt{c.ID, resp}
		}, nil, ErrVerification},
		{"expired", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			clk.Advance(s.cfg.CeremonyTTL + time.Second)
			return attempt{id, resp}
		}, nil, ErrCeremonyNotFound},
		{"unknown ceremony", func(t *testing.T) attempt {
			_, resp := beginLogin(t, s, auth, "")
			return attempt{newCeremonyID(), resp}
		}, nil, ErrCeremonyNotFound},
		{"login finished as step-up", func(t *testing.T) attempt {
			return attempt(func() attempt { id, resp := beginLogin(t, s, auth, "alice"); return attempt{id, resp} }())
		}, func(at attempt) error {
			_, err := s.FinishStepUp(ctx, at.ceremony, a.ID, nil, at.resp)
			return err
		}, ErrCeremonyMismatch},
		{"step-up finished as login", func(t *testing.T) attempt {
			c, err := s.BeginStepUp(ctx, a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := auth.Assert(c.Options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			return attempt{c.ID, resp}
		}, nil, ErrCeremonyMismatch},
		{"without user verification", func(t *testing.T) attempt {
			lazy := auth.Clone()
			lazy.UserVerified = false
			c, _ := s.BeginLogin(ctx, "")
			resp, err := lazy.Assert(c.Options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			return attempt{c.ID, resp}
		}, nil, ErrVerification},
		{"tampered signature", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			return attempt{id, editJSON(t, resp, func(m map[string]any) {
				r := m["response"].(map[string]any)
				sig, err := base64.RawURLEncoding.DecodeString(r["signature"].(string))
				if err != nil {
					t.Fatal(err)
				}
				sig[len(sig)-5] ^= 1 // inside s, so the DER still parses
				r["signature"] = base64.RawURLEncoding.EncodeToString(sig)
			})}
		}, nil, ErrVerification},
		{"unknown member", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			return attempt{id, editJSON(t, resp, func(m map[string]any) { m["extra"] = true })}
		}, nil, ErrInvalidInput},
		{"member in another case", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			return attempt{id, editJSON(t, resp, func(m map[string]any) { m["ID"] = m["id"]; delete(m, "id") })}
		}, nil, ErrInvalidInput},
		{"unknown response member", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			return attempt{id, editJSON(t, resp, func(m map[string]any) { m["response"].(map[string]any)["counter"] = 99 })}
		}, nil, ErrInvalidInput},
		{"malformed", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			return attempt{id, resp[:len(resp)/2]}
		}, nil, ErrInvalidInput},
		{"oversized", func(t *testing.T) attempt {
			id, resp := beginLogin(t, s, auth, "")
			return attempt{id, append(resp[:len(resp)-1], []byte(`,"pad":"`+strings.Repeat("x", MaxCredentialJSON)+`"}`)...)}
		}, nil, ErrInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.prepare(t)
			before := snapshot(t, s)
			finish := tc.finish
			if finish == nil {
				finish = func(at attempt) error { _, err := s.FinishLogin(ctx, at.ceremony, at.resp); return err }
			}
			err := finish(at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("finish error = %v, want %v", err, tc.want)
			}
			t.Logf("refused as expected: %v", err)
			sameState(t, tc.name, before, snapshot(t, s))
		})
	}
	// None of that harmed the credential.
	if as := login(t, s, auth, "alice"); as.Credential.Cloned {
		t.Errorf("credential marked cloned after refused attempts")
	}
}

func TestFinishRegistrationRefusals(t *testing.T) {
	clk := newClock()
	s := newTestService(t, Config{Now: clk.Now})
	ctx := context.Background()
	register(t, s, webauthntest.New(), "taken")

	begin := func(t *testing.T, name string) (string, []byte) {
		t.Helper()
		c, err := s.BeginRegistration(ctx, Registration{Name: name, DisplayName: "N"}, "")
		if err != nil {
			t.Fatalf("BeginRegistration(%q): %v", name, err)
		}
		resp, err := webauthntest.New().Register(c.Options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		return c.ID, resp
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T) (string, []byte)
		want    error
	}{
		{"unknown member", func(t *testing.T) (string, []byte) {
			id, resp := begin(t, "newbie")
			return id, editJSON(t, resp, func(m map[string]any) { m["response"].(map[string]any)["attestationStatement"] = "x" })
		}, ErrInvalidInput},
		{"unknown top-level member", func(t *testing.T) (string, []byte) {
			id, resp := begin(t, "newbie")
			return id, editJSON(t, resp, func(m map[string]any) { m["user"] = "admin" })
		}, ErrInvalidInput},
		{"malformed", func(t *testing.T) (string, []byte) {
			id, _ := begin(t, "newbie")
			return id, []byte(`{"id":`)
		}, ErrInvalidInput},
		{"not an object", func(t *testing.T) (string, []byte) {
			id, _ := begin(t, "newbie")
			return id, []byte(`[1,2]`)
		}, ErrInvalidInput},
		{"oversized", func(t *testing.T) (string, []byte) {
			id, _ := begin(t, "newbie")
			return id, bytes.Repeat([]byte(" "), MaxCredentialJSON+1)
		}, ErrInvalidInput},
		{"wrong origin", func(t *testing.T) (string, []byte) {
			c, _ := s.BeginRegistration(ctx, Registration{Name: "newbie", DisplayName: "N"}, "")
			resp, err := webauthntest.New().Register(c.Options, "http://localhost:9999")
			if err != nil {
				t.Fatal(err)
			}
			return c.ID, resp
		}, ErrVerification},
		{"wrong RP id", func(t *testing.T) (string, []byte) {
			c, _ := s.BeginRegistration(ctx, Registration{Name: "newbie", DisplayName: "N"}, "")
			opts := editOptions(t, c.Options, func(pk map[string]any) { pk["rp"] = map[string]any{"id": "evil.example", "name": "x"} })
			resp, err := webauthntest.New().Register(opts, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			return c.ID, resp
		}, ErrVerification},
		{"expired", func(t *testing.T) (string, []byte) {
			id, resp := begin(t, "newbie")
			clk.Advance(s.cfg.CeremonyTTL)
			return id, resp
		}, ErrCeremonyNotFound},
		{"finished twice", func(t *testing.T) (string, []byte) {
			id, resp := begin(t, "twice")
			if _, _, err := s.FinishRegistration(ctx, id, resp); err != nil {
				t.Fatalf("first FinishRegistration: %v", err)
			}
			return id, resp
		}, ErrCeremonyNotFound},
		{"name taken meanwhile", func(t *testing.T) (string, []byte) {
			id, resp := begin(t, "racer")
			register(t, s, webauthntest.New(), "racer")
			return id, resp
		}, ErrNameTaken},
		{"login ceremony", func(t *testing.T) (string, []byte) {
			c, err := s.BeginLogin(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			_, resp := begin(t, "newbie")
			return c.ID, resp
		}, ErrCeremonyMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, resp := tc.prepare(t)
			before := snapshot(t, s)
			if _, _, err := s.FinishRegistration(ctx, id, resp); !errors.Is(err, tc.want) {
				t.Fatalf("FinishRegistration error = %v, want %v", err, tc.want)
			} else {
				t.Logf("refused as expected: %v", err)
			}
			sameState(t, tc.name, before, snapshot(t, s))
		})
	}

	inputs := []struct {
		reg  Registration
		want error
	}{
		{Registration{Name: "taken", DisplayName: "T"}, ErrNameTaken},
		{Registration{Name: "Bad", DisplayName: "B"}, ErrInvalidInput},
		{Registration{Name: "ab", DisplayName: "B"}, ErrInvalidInput},
		{Registration{Name: strings.Repeat("a", 33), DisplayName: "B"}, ErrInvalidInput},
		{Registration{Name: "ok-name", DisplayName: "bell\a"}, ErrInvalidInput},
		{Registration{Name: "ok-name", DisplayName: strings.Repeat("é", 65)}, ErrInvalidInput},
		{Registration{Name: "ok-name", DisplayName: "   "}, ErrInvalidInput},
	}
	for _, in := range inputs {
		if _, err := s.BeginRegistration(ctx, in.reg, ""); !errors.Is(err, in.want) {
			t.Errorf("BeginRegistration(%+v) error = %v, want %v", in.reg, err, in.want)
		}
	}
	if _, err := s.BeginRegistration(ctx, Registration{Name: "ok-name", DisplayName: strings.Repeat("é", 64)}, ""); err != nil {
		t.Errorf("BeginRegistration with a 64-character display name: %v", err)
	}
}

// TestDisplayNameDefaultsToName registers without a display name, as
// passkey servers allow: the authenticator is shown the handle, and the
// avatar keeps it as its display name.
func TestDisplayNameDefaultsToName(t *testing.T) {
	s := newTestService(t, Config{})
	ctx := context.Background()
	c, err := s.BeginRegistration(ctx, Registration{Name: "nameless"}, "")
	if err != nil {
		t.Fatalf("BeginRegistration without a display name: %v", err)
	}
	var options struct {
		PublicKey struct {
			User struct {
				Name        string `json:"name"`
				DisplayName string `json:"displayName"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(c.Options, &options); err != nil {
		t.Fatal(err)
	}
	if u := options.PublicKey.User; u.Name != "nameless" || u.DisplayName != "nameless" {
		t.Fatalf("the authenticator is shown user %+v, want the handle as both names", u)
	}
	resp, err := webauthntest.New().Register(c.Options, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.FinishRegistration(ctx, c.ID, resp)
	if err != nil {
		t.Fatal(err)
	}
	if a.DisplayName != "nameless" {
		t.Fatalf("display name %q, want the handle", a.DisplayName)
	}
}

func TestClonedCredential(t *testing.T) {
	s := newTestService(t, Config{})
	ctx := context.Background()
	auth := webauthntest.New()
	a, cred := register(t, s, auth, "alice")
	login(t, s, auth, "alice")

	copied := auth.Clone()
	if as := login(t, s, copied, "alice"); as.Credential.SignCount != 2 {
		t.Fatalf("sign-in with the copy: SignCount = %d, want 2", as.Credential.SignCount)
	}
	id, resp := beginLogin(t, s, auth, "alice") // the original, counter 2 again
	_, err := s.FinishLogin(ctx, id, resp)
	var ce *ClonedError
	if !errors.Is(err, ErrClonedCredential) || !errors.As(err, &ce) {
		t.Fatalf("FinishLogin with the original after the copy: error = %v, want a *ClonedError", err)
	}
	if ce.AvatarID != a.ID || !bytes.Equal(ce.CredentialID, cred.ID) || ce.Presented != 2 || ce.Stored != 2 {
		t.Errorf("ClonedError = %+v, want avatar %s credential %x presented 2 stored 2", ce, a.ID, cred.ID)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Credential(cred.ID); !c.Cloned || c.DeviceAssurance() != AssuranceCloned || c.SignCount != 2 {
		t.Errorf("credential after the clone = %+v, want Cloned, assurance 0, SignCount 2", c)
	}
	// Refused from now on, whichever copy and however high the counter.
	if err := copied.SetCounter(cred.ID, 1000); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*webauthntest.Authenticator{auth, copied} {
		id, resp := beginLogin(t, s, who, "")
		if _, err := s.FinishLogin(ctx, id, resp); !errors.Is(err, ErrClonedCredential) {
			t.Errorf("FinishLogin with a cloned credential: error = %v, want ErrClonedCredential", err)
		}
	}
	if _, err := s.BeginLogin(ctx, "alice"); !errors.Is(err, ErrClonedCredential) {
		t.Errorf("BeginLogin(alice) with only a cloned credential: error = %v, want ErrClonedCredential", err)
	}
	if _, err := s.BeginStepUp(ctx, a.ID, nil); !errors.Is(err, ErrClonedCredential) {
		t.Errorf("BeginStepUp with only a cloned credential: error = %v, want ErrClonedCredential", err)
	}
}

func TestSyncedPasskey(t *testing.T) {
	s := newTestService(t, Config{})
	synced := webauthntest.New()
	synced.Synced = true
	_, cred := register(t, s, synced, "sync")
	_, bound := register(t, s, webauthntest.New(), "bound")
	if !cred.BackupEligible || !cred.BackedUp {
		t.Errorf("synced credential flags BE %v BS %v, want true true", cred.BackupEligible, cred.BackedUp)
	}
	for i := range 5 {
		as := login(t, s, synced, "")
		if as.Credential.SignCount != 0 || as.Credential.Cloned || !as.BackupEligible || !as.BackedUp {
			t.Fatalf("sign-in %d with a synced passkey = count %d cloned %v BE %v BS %v; want 0 false true true",
				i, as.Credential.SignCount, as.Credential.Cloned, as.BackupEligible, as.BackedUp)
		}
	}
	if s, b := cred.DeviceAssurance(), bound.DeviceAssurance(); s >= b {
		t.Errorf("DeviceAssurance synced %v, device-bound %v: want synced lower", s, b)
	}
}

// TestConcurrentSignIns finishes 50 sign-ins with one credential at once.
// Each counter is unique and higher than any finished before its ceremony
// began, so none is a clone and the stored counter must end at the max.
func TestConcurrentSignIns(t *testing.T) {
	s := newTestService(t, Config{})
	ctx := context.Background()
	auth := webauthntest.New()
	a, cred := register(t, s, auth, "alice")

	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := s.BeginLogin(ctx, "")
			if err != nil {
				errs[i] = err
				return
			}
			resp, err := auth.Assert(c.Options, testOrigin)
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = s.FinishLogin(ctx, c.ID, resp)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("sign-in %d: %v", i, err)
		}
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	max, _ := auth.Counter(cred.ID)
	if c := got.Credential(cred.ID); c.SignCount != max || c.Cloned || max != n {
		t.Errorf("after %d concurrent sign-ins: SignCount %d cloned %v, want %d (authenticator at %d), not cloned", n, c.SignCount, c.Cloned, n, max)
	}
}

// TestOutOfOrderFinishes begins 50 ceremonies, answers them in order
// (counters 1..50), then finishes them concurrently in shuffled order.
func TestOutOfOrderFinishes(t *testing.T) {
	s := newTestService(t, Config{})
	ctx := context.Background()
	auth := webauthntest.New()
	a, cred := register(t, s, auth, "alice")

	const n = 50
	type pending struct {
		id   string
		resp []byte
	}
	ps := make([]pending, n)
	for i := range ps {
		ps[i].id, ps[i].resp = beginLogin(t, s, auth, "")
	}
	rand.Shuffle(n, func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range ps {
		wg.Go(func() { _, errs[i] = s.FinishLogin(ctx, p.id, p.resp) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("finish %d: %v", i, err)
		}
	}
	got, _ := s.Get(ctx, a.ID)
	if c := got.Credential(cred.ID); c.SignCount != n || c.Cloned {
		t.Errorf("SignCount %d cloned %v, want %d, false", c.SignCount, c.Cloned, n)
	}
	// A clone presenting an old counter after all that is still caught.
	copied := auth.Clone()
	if err := copied.SetCounter(cred.ID, n/2); err != nil {
		t.Fatal(err)
	}
	id, resp := beginLogin(t, s, copied, "")
	if _, err := s.FinishLogin(ctx, id, resp); !errors.Is(err, ErrClonedCredential) {
		t.Errorf("FinishLogin with counter %d after %d: error = %v, want ErrClonedCredential", n/2+1, n, err)
	}
}

func TestCounterLogAdmit(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	const window = 4 * time.Minute
	cases := []struct {
		name      string
		log       counterLog
		presented uint32
		stored    uint32
		begun     time.Time
		wantCount uint32
		wantOK    bool
	}{
		{"synced zero", counterLog{}, 0, 0, at(0), 0, true},
		{"first use", counterLog{}, 1, 0, at(0), 1, true},
		{"increase", counterLog{Marks: []counterMark{{5, at(1)}}}, 6, 5, at(2), 6, true},
		{"equal, settled", counterLog{Marks: []counterMark{{5, at(1)}}}, 5, 5, at(2), 5, false},
		{"lower, settled", counterLog{Marks: []counterMark{{5, at(1)}}}, 3, 5, at(2), 5, false},
		{"zero after non-zero", counterLog{Marks: []counterMark{{5, at(1)}}}, 0, 5, at(2), 5, false},
		{"raised after begin", counterLog{Floor: 2, Marks: []counterMark{{5, at(3)}}}, 4, 5, at(2), 5, true},
		{"at baseline", counterLog{Floor: 2, Marks: []counterMark{{3, at(1)}, {5, at(3)}}}, 3, 5, at(2), 5, false},
		{"repeated in window", counterLog{Floor: 2, Marks: []counterMark{{5, at(3)}, {4, at(4)}}}, 4, 5, at(2), 5, false},
		{"floor decides", counterLog{Floor: 7}, 7, 7, at(2), 7, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.log
			l.Marks = append([]counterMark(nil), tc.log.Marks...)
			got, ok := l.admit(tc.presented, tc.stored, tc.begun, at(10), window)
			if got != tc.wantCount || ok != tc.wantOK {
				t.Errorf("admit(%d, stored %d) = %d, %v; want %d, %v", tc.presented, tc.stored, got, ok, tc.wantCount, tc.wantOK)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		var l counterLog
		for i := uint32(1); i <= 3*maxCounterMarks; i++ {
			if _, ok := l.admit(i, i-1, at(int(i)), at(int(i)+1), time.Hour); !ok {
				t.Fatalf("admit(%d) refused", i)
			}
		}
		if len(l.Marks) != maxCounterMarks || l.Floor != 2*maxCounterMarks {
			t.Errorf("after %d uses: %d marks, floor %d; want %d, %d", 3*maxCounterMarks, len(l.Marks), l.Floor, maxCounterMarks, 2*maxCounterMarks)
		}
		l.prune(at(10000))
		if len(l.Marks) != 0 || l.Floor != 3*maxCounterMarks {
			t.Errorf("after pruning all: %d marks, floor %d; want 0, %d", len(l.Marks), l.Floor, 3*maxCounterMarks)
		}
	})
}

func TestConfig(t *testing.T) {
	st := newTestStore(t)
	s, err := New(context.Background(), st, Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New(defaults): %v", err)
	}
	if s.cfg.RPID != "localhost" || s.cfg.RPDisplayName != "ZeroRealm" || s.cfg.CeremonyTTL != 2*time.Minute ||
		!equalStrings(s.cfg.Origins, []string{"http://localhost:8080"}) || !equalStrings(s.cfg.DefaultRoles, []string{"visitor"}) {
		t.Errorf("defaults = %+v", s.cfg)
	}
	var opts struct {
		PublicKey struct {
			RP                     struct{ ID string }
			AuthenticatorSelection struct {
				ResidentKey      string `json:"residentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			Attestation string `json:"attestation"`
		} `json:"publicKey"`
	}
	c, err := s.BeginRegistration(context.Background(), Registration{Name: "alice", DisplayName: "A"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(c.Options, &opts); err != nil {
		t.Fatal(err)
	}
	if pk := opts.PublicKey; pk.RP.ID != "localhost" || pk.AuthenticatorSelection.ResidentKey != "required" ||
		pk.AuthenticatorSelection.UserVerification != "required" || pk.Attestation != "direct" {
		t.Errorf("creation options = %s", c.Options)
	}

	bad := []Config{
		{Origins: []string{"localhost:8080"}},
		{Origins: []string{"ftp://localhost"}},
		{Origins: []string{"https://realm.example/path"}},
		{Origins: []string{"https://realm.example?q"}},
		{CeremonyTTL: -time.Second},
		{DefaultRoles: []string{"Visitor"}},
		{RPID: "not a domain"},
	}
	for _, cfg := range bad {
		if _, err := New(context.Background(), st, cfg); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("New(%+v) error = %v, want ErrInvalidInput", cfg, err)
		}
	}
}

func TestRacingFinishes(t *testing.T) {
	s := newTestService(t, Config{})
	ctx := context.Background()
	auth := webauthntest.New()
	register(t, s, auth, "alice")
	for round := range 10 {
		id, resp := beginLogin(t, s, auth, "")
		const racers = 4
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { _, errs[i] = s.FinishLogin(ctx, id, resp) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrCeremonyNotFound):
				t.Errorf("round %d: racing FinishLogin error = %v, want ErrCeremonyNotFound", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d racing finishes of one ceremony succeeded, want 1", round, won, racers)
		}
	}
}
