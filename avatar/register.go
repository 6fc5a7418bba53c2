package avatar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Registration names a new avatar.
type Registration struct {
	Name        string // unique handle, see ValidateName
	DisplayName string // see ValidateDisplayName; "" means Name, as passkey servers default it
}

// BeginRegistration begins creating a passkey. With existing == "" it is
// for a new avatar named by reg (the name is checked now and claimed at
// finish); otherwise it adds a passkey to the avatar existing, which the
// caller has authenticated, reg is ignored, and the avatar's current
// credentials are excluded. The passkey must be discoverable and verify
// its user; attestation is asked for and accepted when absent.
func (s *Service) BeginRegistration(ctx context.Context, reg Registration, existing string) (Ceremony, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	st := &ceremonyState{Kind: kindRegistration}
	var user *webauthnUser
	var exclude []protocol.CredentialDescriptor
	if existing == "" {
		if err := ValidateName(reg.Name); err != nil {
			return Ceremony{}, err
		}
		if reg.DisplayName == "" {
			reg.DisplayName = reg.Name
		}
		if err := ValidateDisplayName(reg.DisplayName); err != nil {
			return Ceremony{}, err
		}
		if _, err := s.byName(ctx, reg.Name); err == nil {
			return Ceremony{}, fmt.Errorf("%w: %q", ErrNameTaken, reg.Name)
		} else if !errors.Is(err, ErrNotFound) {
			return Ceremony{}, err
		}
		st.AvatarID, st.NewAvatar, st.Name, st.DisplayName = newAvatarID(), true, reg.Name, reg.DisplayName
		user = &webauthnUser{id: st.AvatarID, name: reg.Name, displayName: reg.DisplayName}
	} else {
		rec, _, err := s.load(ctx, existing)
		if err != nil {
			return Ceremony{}, err
		}
		if len(rec.Credentials) >= maxCredentials {
			return Ceremony{}, invalidf("avatar %s has the maximum of %d credentials", existing, maxCredentials)
		}
		st.AvatarID = rec.ID
		user = userOf(&rec.Avatar)
		for _, c := range user.WebAuthnCredentials() {
			exclude = append(exclude, c.Descriptor())
		}
	}
	creation, session, err := s.wa.BeginRegistration(user, webauthn.WithExclusions(exclude))
	if err != nil {
		return Ceremony{}, fmt.Errorf("avatar: begin registration: %w", err)
	}
	return s.saveCeremony(ctx, st, session, creation)
}

// FinishRegistration verifies the browser's RegistrationResponseJSON for
// the ceremony and stores the passkey: with a new avatar, or added to the
// existing one. It returns the avatar as stored and the new credential.
func (s *Service) FinishRegistration(ctx context.Context, ceremonyID string, credentialJSON []byte) (*Avatar, *Credential, error) {
	parsed, err := parseRegistrationJSON(credentialJSON)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	st, err := s.takeCeremony(ctx, ceremonyID, kindRegistration)
	if err != nil {
		return nil, nil, err
	}
	var user *webauthnUser
	if st.NewAvatar {
		user = &webauthnUser{id: st.AvatarID, name: st.Name, displayName: st.DisplayName}
	} else {
		rec, _, err := s.load(ctx, st.AvatarID)
		if err != nil {
			return nil, nil, err
		}
		user = userOf(&rec.Avatar)
	}
	wc, err := s.wa.CreateCredential(user, st.Session, parsed)
	if err != nil {
		return nil, nil, verificationError("registration", err)
	}
	now := s.now()
	cred := Credential{
		ID:                wc.ID,
		PublicKey:         wc.PublicKey,
		AttestationFormat: wc.AttestationFormat,
		AAGUID:            wc.Authenticator.AAGUID,
		// Self attestation is signed with the credential's own key and
		// proves nothing about the device, so it does not count.
		Attested: wc.AttestationFormat != string(protocol.AttestationFormatNone) &&
			wc.AttestationType != string(metadata.None) && wc.AttestationType != string(metadata.BasicSurrogate),
		SignCount:      wc.Authenticator.SignCount,
		BackupEligible: wc.Flags.BackupEligible,
		BackedUp:       wc.Flags.BackupState,
		UserVerified:   wc.Flags.UserVerified,
		Transports:     stringsOf(wc.Transport),
		Created:        now,
	}
	var a *Avatar
	if st.NewAvatar {
		a, err = s.createAvatar(ctx, st, cred)
	} else {
		a, err = s.addCredential(ctx, st.AvatarID, cred)
	}
	if err != nil {
		return nil, nil, err
	}
	s.log.Info("passkey registered", "avatar", a.ID, "name", a.Name, "new_avatar", st.NewAvatar,
		"credential", credentialKey(cred.ID), "format", cred.AttestationFormat, "attested", cred.Attested, "backup_eligible", cred.BackupEligible)
	c := *a.Credential(cred.ID)
	return a, &c, nil
}

// createAvatar claims the name, then the credential id, then (when the
// bootstrap is on) the bootstrap key, then writes the avatar, which is what
// makes the claims count: a crash in between leaves claims that point to
// no avatar, which later registrations take over (see claim).
func (s *Service) createAvatar(ctx context.Context, st *ceremonyState, cred Credential) (*Avatar, error) {
	rec := &avatarRecord{Avatar: Avatar{
		ID:          st.AvatarID,
		Name:        st.Name,
		DisplayName: st.DisplayName,
		Roles:       slices.Clone(s.cfg.DefaultRoles),
		Created:     cred.Created,
		Credentials: []Credential{cred},
	}}
	rec.counters(cred.ID).Floor = cred.SignCount
	nameRev, err := s.claim(ctx, s.names, st.Name, st.AvatarID, func(r *avatarRecord) bool { return r.Name == st.Name })
	if errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("%w: %q: %w", ErrNameTaken, st.Name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("avatar: claim name %q: %w", st.Name, err)
	}
	credKey := credentialKey(cred.ID)
	credRev, err := s.claim(ctx, s.creds, credKey, st.AvatarID, func(r *avatarRecord) bool { return r.Credential(cred.ID) != nil })
	if err != nil {
		s.release(ctx, s.names, st.Name, nameRev)
		return nil, credentialClaimError(credKey, err)
	}
	var bootRev uint64
	if len(s.cfg.BootstrapRoles) > 0 && !s.bootstrapDone.Load() {
		// A store failure fails the registration rather than guess: a
		// guess could leave the key claimed for an avatar stored without
		// the role, and the realm without an administrator.
		if bootRev, err = s.claimBootstrap(ctx, st.AvatarID); err != nil {
			s.release(ctx, s.creds, credKey, credRev)
			s.release(ctx, s.names, st.Name, nameRev)
			return nil, err
		}
		if bootRev != 0 {
			rec.Roles = slices.Clone(s.cfg.BootstrapRoles)
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("avatar: encode %s: %w", rec.ID, err)
	}
	recRev, err := s.avatars.Create(ctx, st.AvatarID, data)
	if err != nil {
		if bootRev != 0 {
			s.release(ctx, s.admins, bootstrapKey, bootRev)
		}
		s.release(ctx, s.creds, credKey, credRev)
		s.release(ctx, s.names, st.Name, nameRev)
		return nil, fmt.Errorf("avatar: create %s: %w", st.AvatarID, err)
	}
	if bootRev != 0 {
		s.bootstrapDone.Store(true)
		if err := s.rosterSet(ctx, st.AvatarID, rosterEntry{Admin: true, Rev: recRev}, false); err != nil {
			s.log.Warn("bootstrap administrator stored but not yet in the admin roster; it is added at its next role change", "avatar", st.AvatarID, "err", err)
		}
		s.log.Info("bootstrap: first avatar of a realm without an administrator promoted", "avatar", st.AvatarID, "name", st.Name, "roles", rec.Roles)
		if s.cfg.OnBootstrap != nil {
			s.cfg.OnBootstrap(ctx, rec.Avatar.clone())
		}
	}
	return rec.Avatar.clone(), nil
}

// addCredential claims the credential id and adds it to the avatar with
// compare-and-set.
func (s *Service) addCredential(ctx context.Context, avatarID string, cred Credential) (*Avatar, error) {
	credKey := credentialKey(cred.ID)
	credRev, err := s.claim(ctx, s.creds, credKey, avatarID, func(r *avatarRecord) bool { return r.Credential(cred.ID) != nil })
	if err != nil {
		return nil, credentialClaimError(credKey, err)
	}
	rec, err := s.modify(ctx, avatarID, func(r *avatarRecord) error {
		if r.Credential(cred.ID) != nil {
			return invalidf("credential %s is already registered", credKey)
		}
		if len(r.Credentials) >= maxCredentials {
			return invalidf("avatar %s has the maximum of %d credentials", avatarID, maxCredentials)
		}
		r.Credentials = append(r.Credentials, cred)
		r.counters(cred.ID).Floor = cred.SignCount
		return nil
	})
	if err != nil {
		s.release(ctx, s.creds, credKey, credRev)
		return nil, err
	}
	return rec.Avatar.clone(), nil
}

func credentialClaimError(key string, err error) error {
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: credential %s is registered to another avatar: %w", ErrVerification, key, err)
	}
	return fmt.Errorf("avatar: claim credential %s: %w", key, err)
}
