package avatar

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Avatar is an identity of the realm. Its ID is random and never changes;
// its Name is the unique handle others see and sign in with.
type Avatar struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	DisplayName string       `json:"display_name"`
	Roles       []string     `json:"roles"`
	Wallets     []string     `json:"wallets,omitempty"`
	Created     time.Time    `json:"created"`
	Credentials []Credential `json:"credentials"`
}

// Credential is a passkey registered to an avatar: the public half and what
// the authenticator proved about itself when it was registered and since.
type Credential struct {
	ID                []byte    `json:"id"`
	PublicKey         []byte    `json:"public_key"` // COSE_Key
	AttestationFormat string    `json:"attestation_format"`
	AAGUID            []byte    `json:"aaguid,omitempty"`
	Attested          bool      `json:"attested"`
	SignCount         uint32    `json:"sign_count"`
	BackupEligible    bool      `json:"backup_eligible"`
	BackedUp          bool      `json:"backed_up"`
	UserVerified      bool      `json:"user_verified"`
	Transports        []string  `json:"transports,omitempty"`
	Created           time.Time `json:"created"`
	LastUsed          time.Time `json:"last_used,omitzero"`
	Cloned            bool      `json:"cloned,omitempty"`
	Name              string    `json:"name,omitempty"`
}

// Device assurance levels, the evidence a credential gives that the key
// lives in one piece of hardware the avatar holds.
const (
	// AssuranceAttested: the authenticator proved its model with a verified
	// attestation statement (not self attestation), and the key cannot
	// leave it (not backup eligible).
	AssuranceAttested = 1.0
	// AssuranceDeviceBound: the key is not backup eligible, so it stays on
	// one device, but nothing proves which kind of device.
	AssuranceDeviceBound = 0.7
	// AssuranceSynced: a backup-eligible passkey is copied by a credential
	// manager to every device of an account, so holding it proves less
	// about which device is present; it also has no signature counter to
	// reveal copies.
	AssuranceSynced = 0.5
	// AssuranceCloned: the signature counter went backwards, so at least
	// two copies of the key are in use; the credential proves nothing.
	AssuranceCloned = 0.0
)

// DeviceAssurance rates in [0,1] how strongly a sign-in with this
// credential shows that one specific device is present: AssuranceCloned,
// AssuranceSynced, AssuranceAttested or AssuranceDeviceBound, checked in
// that order. The trust package weighs it; this package only reports it.
func (c *Credential) DeviceAssurance() float64 {
	switch {
	case c.Cloned:
		return AssuranceCloned
	case c.BackupEligible || c.BackedUp:
		return AssuranceSynced
	case c.Attested:
		return AssuranceAttested
	default:
		return AssuranceDeviceBound
	}
}

// Credential returns the avatar's credential with id, or nil.
func (a *Avatar) Credential(id []byte) *Credential {
	for i := range a.Credentials {
		if string(a.Credentials[i].ID) == string(id) {
			return &a.Credentials[i]
		}
	}
	return nil
}

func (a *Avatar) clone() *Avatar {
	c := *a
	c.Roles = slices.Clone(a.Roles)
	c.Wallets = slices.Clone(a.Wallets)
	c.Credentials = slices.Clone(a.Credentials)
	for i := range c.Credentials {
		c.Credentials[i].Transports = slices.Clone(c.Credentials[i].Transports)
	}
	return &c
}

const (
	avatarIDPrefix = "av_"
	avatarIDBytes  = 16
	maxDisplayName = 64
	maxRoleLen     = 64
	maxRoles       = 32
)

// The handle rule in the forms its clients read: the API description
// publishes NamePattern, MinNameLen and MaxNameLen on the registration
// request, and NameRule is what a person is told. ValidateName enforces
// exactly this (TestNamePatternIsValidateName keeps them together).
const (
	MinNameLen  = 3
	MaxNameLen  = 32
	NamePattern = "^[a-z0-9_-]{3,32}$"
	NameRule    = "3 to 32 characters: lowercase letters a-z, digits 0-9, '_' or '-'"
)

func newAvatarID() string {
	b := make([]byte, avatarIDBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return avatarIDPrefix + hex.EncodeToString(b)
}

// validAvatarID keeps caller-supplied ids to the shape newAvatarID makes,
// so they are always valid store keys and WebAuthn user handles.
func validAvatarID(id string) error {
	rest, ok := strings.CutPrefix(id, avatarIDPrefix)
	if !ok || len(rest) != 2*avatarIDBytes {
		return invalidf("avatar id %q is not %s followed by %d hex digits", id, avatarIDPrefix, 2*avatarIDBytes)
	}
	for _, c := range []byte(rest) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return invalidf("avatar id %q is not %s followed by %d hex digits", id, avatarIDPrefix, 2*avatarIDBytes)
		}
	}
	return nil
}

// ValidateName reports whether name can be an avatar's handle: 3 to 32 of
// lowercase ASCII letters, digits, '_' and '-'. Lowercase only, so that
// handles that look alike are the same handle.
func ValidateName(name string) error {
	if len(name) < MinNameLen || len(name) > MaxNameLen {
		return invalidf("name %q must be %d to %d characters", name, MinNameLen, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return invalidf("name %q has %q at byte %d: use a-z, 0-9, '_' or '-'", name, c, i)
		}
	}
	return nil
}

// ValidateDisplayName reports whether s can be shown as an avatar's name:
// 1 to 64 characters of valid UTF-8, no control characters, not blank.
func ValidateDisplayName(s string) error {
	if !utf8.ValidString(s) {
		return invalidf("display name is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n < 1 || n > maxDisplayName {
		return invalidf("display name must be 1 to %d characters, has %d", maxDisplayName, n)
	}
	if strings.TrimSpace(s) == "" {
		return invalidf("display name is blank")
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return invalidf("display name has control character %U", r)
		}
	}
	return nil
}

// normalizeRoles checks each role (1 to 64 of a-z, 0-9, '_', '-', '.',
// ':') and drops duplicates, keeping the first order seen.
func normalizeRoles(roles []string) ([]string, error) {
	if len(roles) > maxRoles {
		return nil, invalidf("%d roles, at most %d", len(roles), maxRoles)
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if r == "" || len(r) > maxRoleLen {
			return nil, invalidf("role %q must be 1 to %d characters", r, maxRoleLen)
		}
		for i := 0; i < len(r); i++ {
			if c := r[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && !strings.ContainsRune("_-.:", rune(c)) {
				return nil, invalidf("role %q has %q at byte %d", r, c, i)
			}
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}
