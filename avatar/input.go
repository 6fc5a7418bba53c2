package avatar

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// MaxCredentialJSON bounds a credential response. Real ones are a few
// kilobytes even with an attestation certificate chain.
const MaxCredentialJSON = 64 << 10

// The members PublicKeyCredential.toJSON() produces (WebAuthn L3 §5.1.8,
// RegistrationResponseJSON and AuthenticationResponseJSON). Anything else
// is refused: encoding/json matches names case-insensitively and would
// otherwise let "ID" or "Response" stand in for the real member.
var (
	credentialMembers          = []string{"id", "rawId", "type", "response", "authenticatorAttachment", "clientExtensionResults"}
	attestationResponseMembers = []string{"clientDataJSON", "attestationObject", "transports", "publicKeyAlgorithm", "publicKey", "authenticatorData"}
	assertionResponseMembers   = []string{"clientDataJSON", "authenticatorData", "signature", "userHandle"}
	requiredCredentialMembers  = []string{"id", "rawId", "type", "response"}
	requiredAttestationMembers = []string{"clientDataJSON", "attestationObject"}
	requiredAssertionMembers   = []string{"clientDataJSON", "authenticatorData", "signature"}
)

// checkMembers refuses an oversized body, and any member outside the
// toJSON() shape, before go-webauthn parses it.
func checkMembers(data []byte, response, required []string) error {
	if len(data) > MaxCredentialJSON {
		return invalidf("credential JSON of %d bytes exceeds %d", len(data), MaxCredentialJSON)
	}
	// The members are checked by name below; a name written twice would
	// let go-webauthn parse another value than the one checked.
	if err := strictjson.Check(data); err != nil && !errors.Is(err, strictjson.ErrSyntax) {
		return invalidf("credential JSON: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return invalidf("credential JSON: %w", err)
	}
	if err := onlyMembers("credential", top, credentialMembers, requiredCredentialMembers); err != nil {
		return err
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(top["response"], &resp); err != nil {
		return invalidf("credential JSON response: %w", err)
	}
	return onlyMembers("credential response", resp, response, required)
}

func onlyMembers(what string, obj map[string]json.RawMessage, allowed, required []string) error {
	if obj == nil {
		return invalidf("%s is not a JSON object", what)
	}
	for k := range obj {
		if !slices.Contains(allowed, k) {
			return invalidf("%s has unknown member %q", what, k)
		}
	}
	for _, k := range required {
		if _, ok := obj[k]; !ok {
			return invalidf("%s lacks member %q", what, k)
		}
	}
	return nil
}

// parseRegistrationJSON parses a RegistrationResponseJSON without
// verifying it.
func parseRegistrationJSON(data []byte) (*protocol.ParsedCredentialCreationData, error) {
	if err := checkMembers(data, attestationResponseMembers, requiredAttestationMembers); err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(data)
	if err != nil {
		return nil, inputError("registration response", err)
	}
	return parsed, nil
}

// parseAssertionJSON parses an AuthenticationResponseJSON without
// verifying it.
func parseAssertionJSON(data []byte) (*protocol.ParsedCredentialAssertionData, error) {
	if err := checkMembers(data, assertionResponseMembers, requiredAssertionMembers); err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(data)
	if err != nil {
		return nil, inputError("assertion response", err)
	}
	return parsed, nil
}
