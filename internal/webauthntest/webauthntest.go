package webauthntest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// coseES256 is the COSE algorithm identifier of ECDSA P-256 with SHA-256.
const coseES256 = -7

// Authenticator holds resident P-256 credentials and their signature
// counters. It is safe for concurrent use: counter increments are
// serialized, so concurrent assertions with one credential carry distinct,
// increasing counters, as a real authenticator's would.
type Authenticator struct {
	// AAGUID names the authenticator model in attested credential data.
	AAGUID [16]byte
	// Synced makes credentials created from now on backup eligible and
	// backed up (BE and BS flags) with a counter that stays 0, like a
	// passkey synced by a platform credential manager.
	Synced bool
	// UserVerified sets the UV flag on registrations and assertions. New
	// sets it; clearing it simulates an authenticator that only tests
	// presence.
	UserVerified bool

	mu    sync.Mutex
	creds []*credential
}

type credential struct {
	id         []byte
	rpID       string
	userHandle []byte
	key        *ecdsa.PrivateKey
	counter    uint32
	synced     bool
}

// New returns an authenticator without credentials that verifies its user.
func New() *Authenticator {
	a := &Authenticator{UserVerified: true}
	copy(a.AAGUID[:], "zr-webauthntest!")
	return a
}

// Clone returns an independent copy holding the same keys and counters, as
// if the credentials' private keys had been extracted: the situation the
// signature counter exists to reveal.
func (a *Authenticator) Clone() *Authenticator {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &Authenticator{AAGUID: a.AAGUID, Synced: a.Synced, UserVerified: a.UserVerified}
	for _, cr := range a.creds {
		dup := *cr
		dup.id = slices.Clone(cr.id)
		dup.userHandle = slices.Clone(cr.userHandle)
		c.creds = append(c.creds, &dup)
	}
	return c
}

// SetCounter sets the signature counter of the credential with id; the
// next assertion carries n+1 (or 0 for a synced credential).
func (a *Authenticator) SetCounter(credentialID []byte, n uint32) error {
	return a.update(credentialID, func(c *credential) { c.counter = n })
}

// MoveCredential scopes the credential with id to another RP id, keeping
// its key and counter: its assertions then carry that RP's id hash, as a
// relying party at another domain would receive them.
func (a *Authenticator) MoveCredential(credentialID []byte, rpID string) error {
	return a.update(credentialID, func(c *credential) { c.rpID = rpID })
}

// update changes the credential with id under the lock.
func (a *Authenticator) update(credentialID []byte, change func(*credential)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		if bytes.Equal(c.id, credentialID) {
			change(c)
			return nil
		}
	}
	return fmt.Errorf("webauthntest: no credential %s", b64(credentialID))
}

// Counter returns the signature counter of the credential with id.
func (a *Authenticator) Counter(credentialID []byte) (uint32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		if bytes.Equal(c.id, credentialID) {
			return c.counter, true
		}
	}
	return 0, false
}

// CredentialIDs lists the ids of the credentials, oldest first.
func (a *Authenticator) CredentialIDs() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([][]byte, len(a.creds))
	for i, c := range a.creds {
		ids[i] = slices.Clone(c.id)
	}
	return ids
}

// creationOptions is the part of PublicKeyCredentialCreationOptionsJSON
// an authenticator and its client act on.
type creationOptions struct {
	PublicKey *struct {
		RP struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"user"`
		Challenge          string       `json:"challenge"`
		PubKeyCredParams   []credParam  `json:"pubKeyCredParams"`
		ExcludeCredentials []descriptor `json:"excludeCredentials"`
	} `json:"publicKey"`
}

type requestOptions struct {
	PublicKey *struct {
		Challenge        string       `json:"challenge"`
		RPID             string       `json:"rpId"`
		AllowCredentials []descriptor `json:"allowCredentials"`
		UserVerification string       `json:"userVerification"`
	} `json:"publicKey"`
}

type credParam struct {
	Type string `json:"type"`
	Alg  int    `json:"alg"`
}

type descriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Register creates a credential as navigator.credentials.create() would
// at origin, and returns the RegistrationResponseJSON that toJSON()
// produces.
func (a *Authenticator) Register(optionsJSON []byte, origin string) ([]byte, error) {
	var opts creationOptions
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		return nil, fmt.Errorf("webauthntest: creation options: %w", err)
	}
	o := opts.PublicKey
	if o == nil {
		return nil, errors.New("webauthntest: creation options lack publicKey")
	}
	rpID, err := effectiveRPID(o.RP.ID, origin)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(o.PubKeyCredParams, func(p credParam) bool {
		return p.Type == "public-key" && p.Alg == coseES256
	}) {
		return nil, errors.New("webauthntest: relying party does not accept ES256")
	}
	userHandle, err := unb64(o.User.ID)
	if err != nil || len(userHandle) == 0 || len(userHandle) > 64 {
		return nil, fmt.Errorf("webauthntest: user.id %q is not 1..64 bytes of base64url", o.User.ID)
	}
	if _, err := unb64(o.Challenge); err != nil {
		return nil, fmt.Errorf("webauthntest: challenge: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ex := range o.ExcludeCredentials {
		exID, _ := unb64(ex.ID)
		for _, c := range a.creds {
			if c.rpID == rpID && bytes.Equal(c.id, exID) {
				return nil, errors.New("webauthntest: InvalidStateError: a credential in excludeCredentials is present")
			}
		}
	}
	// A resident credential replaces an older one for the same account.
	a.creds = slices.DeleteFunc(a.creds, func(c *credential) bool {
		return c.rpID == rpID && bytes.Equal(c.userHandle, userHandle)
	})
	cred := &credential{id: id, rpID: rpID, userHandle: userHandle, key: key, synced: a.Synced}
	a.creds = append(a.creds, cred)

	// The uncompressed point is 0x04 || X || Y, 32 bytes each on P-256.
	point, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	coseKey, err := webauthncbor.Marshal(map[int]any{
		1:  2, // kty: EC2
		3:  coseES256,
		-1: 1, // crv: P-256
		-2: point[1:33],
		-3: point[33:65],
	})
	if err != nil {
		return nil, err
	}
	authData := a.authData(cred, flagAT, 0)
	authData = append(authData, a.AAGUID[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, coseKey...)
	attObj, err := webauthncbor.Marshal(map[string]any{
		"fmt":      "none",
		"attStmt":  map[string]any{},
		"authData": authData,
	})
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	clientData, err := clientDataJSON("webauthn.create", o.Challenge, origin)
	if err != nil {
		return nil, err
	}
	return credentialJSON(id, map[string]any{
		"clientDataJSON":     b64(clientData),
		"authenticatorData":  b64(authData),
		"transports":         []string{"internal", "hybrid"},
		"publicKey":          b64(spki),
		"publicKeyAlgorithm": coseES256,
		"attestationObject":  b64(attObj),
	})
}

// credentialJSON is a platform credential's PublicKeyCredential as
// toJSON() produces it, around the response of a registration or an
// assertion.
func credentialJSON(id []byte, response map[string]any) ([]byte, error) {
	return json.Marshal(map[string]any{
		"id":                      b64(id),
		"rawId":                   b64(id),
		"type":                    "public-key",
		"response":                response,
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
	})
}

// Assert signs an assertion as navigator.credentials.get() would at
// origin, with a credential from allowCredentials or, when the list is
// empty, the newest resident credential for the relying party, and
// returns the AuthenticationResponseJSON that toJSON() produces. Each
// assertion advances the credential's counter, except a synced one's.
func (a *Authenticator) Assert(optionsJSON []byte, origin string) ([]byte, error) {
	var opts requestOptions
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		return nil, fmt.Errorf("webauthntest: request options: %w", err)
	}
	o := opts.PublicKey
	if o == nil {
		return nil, errors.New("webauthntest: request options lack publicKey")
	}
	rpID, err := effectiveRPID(o.RPID, origin)
	if err != nil {
		return nil, err
	}
	if _, err := unb64(o.Challenge); err != nil {
		return nil, fmt.Errorf("webauthntest: challenge: %w", err)
	}

	a.mu.Lock()
	cred := a.pick(rpID, o.AllowCredentials)
	if cred == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("webauthntest: NotAllowedError: no credential for %s", rpID)
	}
	if !cred.synced {
		cred.counter++
	}
	authData := a.authData(cred, 0, cred.counter)
	key, id, userHandle := cred.key, cred.id, cred.userHandle
	a.mu.Unlock()

	clientData, err := clientDataJSON("webauthn.get", o.Challenge, origin)
	if err != nil {
		return nil, err
	}
	clientHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(slices.Clone(authData), clientHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, err
	}
	return credentialJSON(id, map[string]any{
		"clientDataJSON":    b64(clientData),
		"authenticatorData": b64(authData),
		"signature":         b64(sig),
		"userHandle":        b64(userHandle),
	})
}

// pick chooses the credential to assert with; the caller holds a.mu.
func (a *Authenticator) pick(rpID string, allow []descriptor) *credential {
	for i := len(a.creds) - 1; i >= 0; i-- {
		c := a.creds[i]
		if c.rpID != rpID {
			continue
		}
		if len(allow) == 0 {
			return c
		}
		for _, d := range allow {
			if id, err := unb64(d.ID); err == nil && bytes.Equal(id, c.id) {
				return c
			}
		}
	}
	return nil
}

// authData encodes rpIdHash, flags and counter; the caller holds a.mu.
func (a *Authenticator) authData(c *credential, extra byte, counter uint32) []byte {
	rpHash := sha256.Sum256([]byte(c.rpID))
	flags := byte(flagUP) | extra
	if a.UserVerified {
		flags |= flagUV
	}
	if c.synced {
		flags |= flagBE | flagBS
	}
	out := append(rpHash[:], flags)
	return binary.BigEndian.AppendUint32(out, counter)
}

// effectiveRPID is the options' RP id, or the origin's host as a browser
// defaults it.
func effectiveRPID(rpID, origin string) (string, error) {
	if rpID != "" {
		return rpID, nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("webauthntest: origin %q has no host", origin)
	}
	return u.Hostname(), nil
}

func clientDataJSON(typ, challenge, origin string) ([]byte, error) {
	// Field order as browsers write it; verifiers must not depend on it,
	// but a faithful sample makes the tests' fuzz seeds realistic.
	return json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, challenge, origin, false})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
