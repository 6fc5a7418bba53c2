package avatar

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Assertion is a verified sign-in or step-up: who, with which passkey, and
// what the authenticator reported about this use.
type Assertion struct {
	Avatar         *Avatar
	Credential     *Credential
	UserVerified   bool
	BackupEligible bool
	BackedUp       bool
	At             time.Time
	// ActionDigest is the action a step-up authorized; nil for a sign-in
	// or a step-up bound to no action.
	ActionDigest []byte
}

// stepUpDomain separates step-up challenges from every other use of
// SHA-256 over a nonce and a digest.
const stepUpDomain = "zerorealm/step-up/v1"

// ActionDigestSize is the length of an action digest (SHA-256, or an
// EIP-712 digest).
const ActionDigestSize = 32

// StepUpChallenge is the WebAuthn challenge of a step-up:
//
//	SHA-256("zerorealm/step-up/v1" || nonce || actionDigest)
//
// with a 32-byte random nonce per ceremony and actionDigest empty when the
// step-up authorizes no particular action. The authenticator signs over
// the challenge, so the assertion stands for that action and no other, and
// anyone holding the nonce can check that offline.
func StepUpChallenge(nonce, actionDigest []byte) []byte {
	h := sha256.New()
	h.Write([]byte(stepUpDomain))
	h.Write(nonce)
	h.Write(actionDigest)
	return h.Sum(nil)
}

// BeginLogin begins a sign-in. With name == "" it is discoverable: the
// browser offers the realm's passkeys and the chosen one's user handle
// names the avatar. Otherwise only that avatar's passkeys (those not
// caught cloned) are allowed. User verification is required.
func (s *Service) BeginLogin(ctx context.Context, name string) (Ceremony, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	st := &ceremonyState{Kind: kindLogin}
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	if name == "" {
		assertion, session, err = s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	} else {
		if err := ValidateName(name); err != nil {
			return Ceremony{}, err
		}
		rec, lookupErr := s.byName(ctx, name)
		if lookupErr != nil {
			return Ceremony{}, lookupErr
		}
		st.AvatarID = rec.ID
		assertion, session, err = s.beginFor(&rec.Avatar)
	}
	if err != nil {
		return Ceremony{}, err
	}
	return s.saveAssertionCeremony(ctx, st, assertion, session)
}

// BeginStepUp begins a fresh user-verified assertion for a signed-in
// avatar, bound to actionDigest (nil, or ActionDigestSize bytes) through
// its challenge; see StepUpChallenge.
func (s *Service) BeginStepUp(ctx context.Context, avatarID string, actionDigest []byte) (Ceremony, error) {
	if actionDigest != nil && len(actionDigest) != ActionDigestSize {
		return Ceremony{}, invalidf("action digest of %d bytes, want %d or none", len(actionDigest), ActionDigestSize)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rec, _, err := s.load(ctx, avatarID)
	if err != nil {
		return Ceremony{}, err
	}
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	st := &ceremonyState{Kind: kindStepUp, AvatarID: rec.ID, ActionDigest: bytes.Clone(actionDigest), Nonce: nonce}
	assertion, session, err := s.beginFor(&rec.Avatar, webauthn.WithChallenge(StepUpChallenge(nonce, actionDigest)))
	if err != nil {
		return Ceremony{}, err
	}
	return s.saveAssertionCeremony(ctx, st, assertion, session)
}

func (s *Service) beginFor(a *Avatar, opts ...webauthn.LoginOption) (*protocol.CredentialAssertion, *webauthn.SessionData, error) {
	allowed := descriptors(a)
	if len(allowed) == 0 {
		return nil, nil, fmt.Errorf("%w: avatar %s has no passkey that is not marked cloned", ErrClonedCredential, a.ID)
	}
	opts = append(opts, webauthn.WithUserVerification(protocol.VerificationRequired), webauthn.WithAllowedCredentials(allowed))
	assertion, session, err := s.wa.BeginLogin(userOf(a), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("avatar: begin assertion: %w", err)
	}
	return assertion, session, nil
}

func (s *Service) saveAssertionCeremony(ctx context.Context, st *ceremonyState, assertion *protocol.CredentialAssertion, session *webauthn.SessionData) (Ceremony, error) {
	if session.UserVerification != protocol.VerificationRequired {
		return Ceremony{}, fmt.Errorf("avatar: assertion ceremony without required user verification")
	}
	return s.saveCeremony(ctx, st, session, assertion)
}

// FinishLogin verifies the browser's AuthenticationResponseJSON for a
// sign-in ceremony and records the credential's use. A credential whose
// counter shows it cloned is marked and refused with a *ClonedError.
func (s *Service) FinishLogin(ctx context.Context, ceremonyID string, credentialJSON []byte) (Assertion, error) {
	parsed, err := parseAssertionJSON(credentialJSON)
	if err != nil {
		return Assertion{}, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	st, err := s.takeCeremony(ctx, ceremonyID, kindLogin)
	if err != nil {
		return Assertion{}, err
	}
	var (
		rec *avatarRecord
		rev uint64
	)
	if st.AvatarID != "" {
		if rec, rev, err = s.loadForUpdate(ctx, st.AvatarID); err != nil {
			return Assertion{}, err
		}
		if _, err := s.wa.ValidateLogin(userOf(&rec.Avatar), st.Session, parsed); err != nil {
			return Assertion{}, verificationError("sign-in", err)
		}
	} else {
		handler := func(rawID, userHandle []byte) (webauthn.User, error) {
			var err error
			if rec, rev, err = s.loadForUpdate(ctx, string(userHandle)); err != nil {
				return nil, err
			}
			return userOf(&rec.Avatar), nil
		}
		if _, _, err := s.wa.ValidatePasskeyLogin(handler, st.Session, parsed); err != nil {
			return Assertion{}, verificationError("discoverable sign-in", err)
		}
	}
	return s.recordUse(ctx, rec, rev, st, parsed)
}

// FinishStepUp verifies the AuthenticationResponseJSON of a step-up. The
// caller passes the avatar and action digest it is authorizing again; a
// ceremony begun for another avatar or another digest is refused with
// ErrCeremonyMismatch, and an assertion with a credential that is not the
// avatar's fails verification.
func (s *Service) FinishStepUp(ctx context.Context, ceremonyID, avatarID string, actionDigest []byte, credentialJSON []byte) (Assertion, error) {
	parsed, err := parseAssertionJSON(credentialJSON)
	if err != nil {
		return Assertion{}, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	st, err := s.takeCeremony(ctx, ceremonyID, kindStepUp)
	if err != nil {
		return Assertion{}, err
	}
	if st.AvatarID != avatarID {
		return Assertion{}, fmt.Errorf("%w: step-up %s was begun for avatar %s, not %s", ErrCeremonyMismatch, ceremonyID, st.AvatarID, avatarID)
	}
	if !bytes.Equal(st.ActionDigest, actionDigest) {
		return Assertion{}, fmt.Errorf("%w: step-up %s was begun for action %x, not %x", ErrCeremonyMismatch, ceremonyID, st.ActionDigest, actionDigest)
	}
	// The stored challenge must be the one derived from this action; a
	// ceremony record that says otherwise was not written by BeginStepUp.
	if want := protocol.URLEncodedBase64(StepUpChallenge(st.Nonce, actionDigest)).String(); st.Session.Challenge != want {
		return Assertion{}, fmt.Errorf("%w: step-up %s challenge is not bound to its action", ErrCeremonyMismatch, ceremonyID)
	}
	rec, rev, err := s.load(ctx, avatarID)
	if err != nil {
		return Assertion{}, err
	}
	if _, err := s.wa.ValidateLogin(userOf(&rec.Avatar), st.Session, parsed); err != nil {
		return Assertion{}, verificationError("step-up", err)
	}
	a, err := s.recordUse(ctx, rec, rev, st, parsed)
	if err != nil {
		return Assertion{}, err
	}
	a.ActionDigest = bytes.Clone(actionDigest)
	return a, nil
}

// recordUse applies a verified assertion to the avatar's record with
// compare-and-set: the counter rule of counterLog, the last use, the
// backup state. A clone marks the credential and returns a *ClonedError.
// rec, read at revision rev, is the record the assertion was verified
// against.
func (s *Service) recordUse(ctx context.Context, rec *avatarRecord, rev uint64, st *ceremonyState, parsed *protocol.ParsedCredentialAssertionData) (Assertion, error) {
	avatarID := rec.ID
	authData := parsed.Response.AuthenticatorData
	presented := authData.Counter
	var cloned *ClonedError
	var now time.Time
	rec, err := s.modifyFrom(ctx, avatarID, rec, rev, func(r *avatarRecord) error {
		cloned = nil
		now = s.now()
		c := r.Credential(parsed.RawID)
		if c == nil {
			return fmt.Errorf("%w: credential %s was removed from avatar %s", ErrNotFound, credentialKey(parsed.RawID), avatarID)
		}
		if c.Cloned {
			return &ClonedError{AvatarID: avatarID, CredentialID: c.ID}
		}
		newCount, ok := r.counters(c.ID).admit(presented, c.SignCount, st.Begun, now, 2*s.cfg.CeremonyTTL)
		if !ok {
			cloned = &ClonedError{AvatarID: avatarID, CredentialID: c.ID, Presented: presented, Stored: c.SignCount}
			c.Cloned = true
			return nil
		}
		c.SignCount = newCount
		c.LastUsed = now
		c.BackedUp = authData.Flags.HasBackupState()
		return nil
	})
	if err != nil {
		return Assertion{}, err
	}
	if cloned != nil {
		s.log.Warn("cloned credential: counter went backwards; credential marked and refused from now on",
			"avatar", avatarID, "credential", credentialKey(cloned.CredentialID), "presented", cloned.Presented, "stored", cloned.Stored)
		return Assertion{}, cloned
	}
	a := rec.Avatar.clone()
	c := *a.Credential(parsed.RawID)
	return Assertion{
		Avatar:         a,
		Credential:     &c,
		UserVerified:   authData.Flags.HasUserVerified(),
		BackupEligible: authData.Flags.HasBackupEligible(),
		BackedUp:       authData.Flags.HasBackupState(),
		At:             now,
	}, nil
}
