package avatar

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/zerorealm/zerorealm/internal/problem"
)

var (
	// ErrCeremonyNotFound: the ceremony id is unknown, was already used
	// (finished or refused), or expired. The client begins a new one.
	ErrCeremonyNotFound = errors.New("avatar: ceremony not found, used or expired")

	// ErrCeremonyMismatch: the ceremony exists but was begun for another
	// purpose: another kind (registration, sign-in, step-up), another
	// avatar, or another action.
	ErrCeremonyMismatch = errors.New("avatar: ceremony was begun for something else")

	// ErrNameTaken: another avatar has the handle.
	ErrNameTaken = errors.New("avatar: name taken")

	// ErrNotFound: no such avatar, name or credential.
	ErrNotFound = errors.New("avatar: not found")

	// ErrLastCredential: removing the credential would leave the avatar
	// without a way to sign in.
	ErrLastCredential = errors.New("avatar: cannot remove the last credential")

	// ErrLastAdmin: the change would take the admin role from the last
	// avatar holding it, leaving nobody who can grant roles.
	ErrLastAdmin = errors.New("avatar: cannot remove the last administrator")

	// ErrClonedCredential: the credential's signature counter went
	// backwards, so its key is in use on more than one authenticator. The
	// credential is marked and refused from then on; the error is a
	// *ClonedError naming the avatar, whose sessions the realm suspends.
	ErrClonedCredential = errors.New("avatar: cloned credential")

	// ErrInvalidInput: the request is malformed: bad JSON, unknown fields,
	// a bad name, an oversized body, a bad argument.
	ErrInvalidInput = errors.New("avatar: invalid input")

	// ErrVerification: the WebAuthn response failed verification
	// (signature, origin, RP id, challenge, user verification, attestation,
	// credential ownership). The message carries go-webauthn's detail for
	// the logs; clients should be told only that verification failed.
	ErrVerification = errors.New("avatar: verification failed")
)

// ClonedError reports a credential caught as cloned; it matches
// ErrClonedCredential with errors.Is.
type ClonedError struct {
	AvatarID     string
	CredentialID []byte
	// Presented and Stored are the counters that disagreed; both zero when
	// the credential had been marked cloned earlier.
	Presented, Stored uint32
}

func (e *ClonedError) Error() string {
	if e.Presented == 0 && e.Stored == 0 {
		return fmt.Sprintf("avatar: credential %s of avatar %s was marked cloned and is refused", base64.RawURLEncoding.EncodeToString(e.CredentialID), e.AvatarID)
	}
	return fmt.Sprintf("avatar: credential %s of avatar %s presented signature counter %d, not above %d: cloned authenticator",
		base64.RawURLEncoding.EncodeToString(e.CredentialID), e.AvatarID, e.Presented, e.Stored)
}

// Is makes errors.Is(err, ErrClonedCredential) hold.
func (e *ClonedError) Is(target error) bool { return target == ErrClonedCredential }

// verificationError wraps a go-webauthn failure as ErrVerification, keeping
// its details and developer info in the message for the logs.
func verificationError(what string, err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s: %s: %s (%s): %w", ErrVerification, what, pe.Type, pe.Details, pe.DevInfo, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrVerification, what, err)
}

// invalidf is ErrInvalidInput with a detail a client may be shown: what
// is wrong with the request, in the words of the format.
func invalidf(format string, args ...any) error {
	return problem.Invalid(ErrInvalidInput, fmt.Errorf(format, args...).Error())
}

// inputError wraps a go-webauthn parse failure as ErrInvalidInput.
func inputError(what string, err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return invalidf("%s: %s (%s): %w", what, pe.Details, pe.DevInfo, err)
	}
	return invalidf("%s: %w", what, err)
}
