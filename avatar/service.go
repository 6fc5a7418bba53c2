package avatar

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Bucket names, relative to the store's prefix.
const (
	avatarsBucket     = "avatars"       // avatar id -> JSON avatarRecord
	namesBucket       = "avatar-names"  // name -> avatar id
	credentialsBucket = "credentials"   // credentialKey(id) -> avatar id
	ceremoniesBucket  = "ceremonies"    // ceremony id -> JSON ceremonyState
	adminsBucket      = "avatar-admins" // "bootstrap" -> avatar id; "roster" -> JSON adminRoster
)

const (
	defaultRPID          = "localhost"
	defaultRPDisplayName = "ZeroRealm"
	defaultOrigin        = "http://localhost:8080"
	defaultCeremonyTTL   = 2 * time.Minute
	defaultRole          = "visitor"
	defaultAdminRole     = "admin"

	// defaultTimeout bounds a call whose context has no deadline; a call
	// makes a handful of store round trips and one signature check.
	defaultTimeout = 10 * time.Second
	// maxCASAttempts bounds the re-read and retry loop of a compare-and-set
	// on one avatar. Every retry means another writer won, so it is only
	// reached by a pathological pile-up on one avatar.
	maxCASAttempts = 200
	// maxCredentials bounds the passkeys of one avatar, and so the size of
	// its record.
	maxCredentials = 32
	// staleClaim is how old an index entry (name or credential id) must be
	// before a registration may take it over when it points to no avatar:
	// a registration writes the index entries first and the avatar last,
	// so an entry without its avatar is either a registration in flight
	// (seconds) or one that died half way.
	staleClaim = time.Minute
)

// Config configures a Service. Zero values are the documented defaults.
type Config struct {
	// RPID is the WebAuthn relying party id: the realm's registrable
	// domain. Default "localhost".
	RPID string
	// RPDisplayName is shown by authenticators. Default "ZeroRealm".
	RPDisplayName string
	// Origins are the web origins ceremonies may come from, as
	// scheme://host[:port]. Default ["http://localhost:8080"].
	Origins []string
	// CeremonyTTL is how long a begun ceremony can be finished. Default 2m.
	CeremonyTTL time.Duration
	// DefaultRoles are given to every new avatar. Default ["visitor"].
	DefaultRoles []string
	// AdminRole is the role that administers avatars' roles. ChangeRoles
	// never takes it from the last avatar holding it. Default "admin".
	AdminRole string
	// BootstrapRoles, when not empty, are given instead of DefaultRoles to
	// the first avatar registered while no avatar has been made
	// administrator this way: exactly one avatar, however many nodes
	// register at once, decided by creating one key. They must include
	// AdminRole. Default: none, nobody is promoted.
	BootstrapRoles []string
	// OnBootstrap, when set, is called once the avatar the bootstrap
	// promoted is stored, on the node that promoted it, with the
	// registration's context; the realm audits it there.
	OnBootstrap func(ctx context.Context, a *Avatar)
	// Now is the clock for ceremony expiry and credential timestamps.
	// Default time.Now.
	Now func() time.Time
	// Logger receives the service's diagnostics. Default: discarded.
	Logger *slog.Logger
}

// Service keeps avatars and runs their passkey ceremonies. It holds no
// state of its own beyond its configuration: every realm node can run one
// over the same store, and any node can finish a ceremony another began.
// It is safe for concurrent use.
type Service struct {
	cfg        Config
	wa         *webauthn.WebAuthn
	log        *slog.Logger
	avatars    *store.Bucket
	names      *store.Bucket
	creds      *store.Bucket
	ceremonies *store.Bucket
	admins     *store.Bucket
	// bootstrapDone is set once this node has seen the bootstrap's avatar
	// stored, so later registrations skip the claim.
	bootstrapDone atomic.Bool
	// begun remembers the ceremonies this node began, so the usual finish
	// (on the node that began it) skips reading the ceremony back.
	begun localCeremonies
	// recent caches avatar records by id as last read or written here. It
	// only ever saves a read before a compare-and-set: an update from a
	// stale copy fails and re-reads, so the bucket stays the truth.
	recent recordCache
	// reads caches avatars for GetCached while CacheReads runs.
	reads readCache
}

// New validates cfg, fills its defaults and declares the service's buckets.
func New(ctx context.Context, st *store.Store, cfg Config) (*Service, error) {
	if st == nil {
		return nil, invalidf("nil store")
	}
	cfg, wa, err := configure(cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, wa: wa, log: cfg.Logger}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	for _, b := range []struct {
		dst *(*store.Bucket)
		cfg store.BucketConfig
	}{
		// The leader confirms a missing avatar or credential: a replica
		// that has not yet heard of one registered a moment ago must not
		// end its session ("the avatar no longer exists") or refuse its
		// first sign-in.
		{&s.avatars, store.BucketConfig{Name: avatarsBucket, LeaderConfirmsAbsence: true, Sealed: true}},
		{&s.names, store.BucketConfig{Name: namesBucket, Sealed: true}},
		{&s.creds, store.BucketConfig{Name: credentialsBucket, LeaderConfirmsAbsence: true, Sealed: true}},
		// Leader reads: a ceremony begun on another node a moment ago must
		// be found, not refused as unknown by a replica that lags.
		{&s.ceremonies, store.BucketConfig{Name: ceremoniesBucket, TTL: cfg.CeremonyTTL, LeaderReads: true, Sealed: true}},
		// Leader reads: the last-admin guard must never decide on a copy
		// that lags an acknowledged change.
		{&s.admins, store.BucketConfig{Name: adminsBucket, LeaderReads: true, Sealed: true}},
	} {
		if *b.dst, err = st.Bucket(ctx, b.cfg); err != nil {
			return nil, fmt.Errorf("avatar: %w", err)
		}
	}
	// A node that finds the bootstrap done never runs it again, even if
	// the key is later deleted from under it.
	if len(cfg.BootstrapRoles) > 0 {
		if id, err := s.Bootstrapped(ctx); err == nil && id != "" {
			s.bootstrapDone.Store(true)
		}
	}
	return s, nil
}

// configure validates cfg, fills its defaults and sets up go-webauthn.
func configure(cfg Config) (Config, *webauthn.WebAuthn, error) {
	if cfg.RPID == "" {
		cfg.RPID = defaultRPID
	}
	if cfg.RPDisplayName == "" {
		cfg.RPDisplayName = defaultRPDisplayName
	}
	if len(cfg.Origins) == 0 {
		cfg.Origins = []string{defaultOrigin}
	}
	cfg.Origins = slices.Clone(cfg.Origins)
	for _, o := range cfg.Origins {
		if err := validateOrigin(o); err != nil {
			return cfg, nil, err
		}
	}
	if cfg.CeremonyTTL < 0 {
		return cfg, nil, invalidf("negative ceremony TTL %v", cfg.CeremonyTTL)
	}
	if cfg.CeremonyTTL == 0 {
		cfg.CeremonyTTL = defaultCeremonyTTL
	}
	if cfg.DefaultRoles == nil {
		cfg.DefaultRoles = []string{defaultRole}
	}
	roles, err := normalizeRoles(cfg.DefaultRoles)
	if err != nil {
		return cfg, nil, fmt.Errorf("default roles: %w", err)
	}
	cfg.DefaultRoles = roles
	if cfg.AdminRole == "" {
		cfg.AdminRole = defaultAdminRole
	}
	if _, err := normalizeRoles([]string{cfg.AdminRole}); err != nil {
		return cfg, nil, fmt.Errorf("admin role: %w", err)
	}
	if cfg.BootstrapRoles, err = normalizeRoles(cfg.BootstrapRoles); err != nil {
		return cfg, nil, fmt.Errorf("bootstrap roles: %w", err)
	}
	if len(cfg.BootstrapRoles) > 0 && !slices.Contains(cfg.BootstrapRoles, cfg.AdminRole) {
		return cfg, nil, invalidf("bootstrap roles %q do not include the admin role %q", cfg.BootstrapRoles, cfg.AdminRole)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	required := true
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPDisplayName,
		RPOrigins:     cfg.Origins,
		// Ask for attestation; an authenticator that gives none is still
		// accepted and recorded as unattested.
		AttestationPreference: protocol.PreferDirectAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: &required,
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: cfg.CeremonyTTL, TimeoutUVD: cfg.CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: cfg.CeremonyTTL, TimeoutUVD: cfg.CeremonyTTL},
		},
	})
	if err != nil {
		return cfg, nil, invalidf("webauthn config: %w", err)
	}
	return cfg, wa, nil
}

func validateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil {
		return invalidf("origin %q: %w", o, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return invalidf("origin %q is not scheme://host[:port] with scheme http or https", o)
	}
	return nil
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// avatarRecord is what the avatars bucket holds: the avatar and, per
// credential (keyed by credentialKey), the counters it presented lately.
type avatarRecord struct {
	Avatar
	Counters map[string]*counterLog `json:"counters,omitempty"`
}

func (r *avatarRecord) counters(credentialID []byte) *counterLog {
	if r.Counters == nil {
		r.Counters = map[string]*counterLog{}
	}
	k := credentialKey(credentialID)
	if r.Counters[k] == nil {
		r.Counters[k] = &counterLog{}
	}
	return r.Counters[k]
}

// credentialKey names a credential id in the credentials bucket and in an
// avatar's counters. Ids longer than a key may be (WebAuthn allows 1023
// bytes) are named by their SHA-256; '.' never occurs in base64url, so the
// two forms cannot collide.
func credentialKey(id []byte) string {
	if len(id) <= 600 {
		return base64.RawURLEncoding.EncodeToString(id)
	}
	sum := sha256Sum(id)
	return "h." + base64.RawURLEncoding.EncodeToString(sum[:])
}

// load reads an avatar's record and its revision.
func (s *Service) load(ctx context.Context, avatarID string) (*avatarRecord, uint64, error) {
	if err := validAvatarID(avatarID); err != nil {
		return nil, 0, err
	}
	e, err := s.avatars.Get(ctx, avatarID)
	if errors.Is(err, store.ErrNotFound) {
		// Kept: a record that does not verify (store.ErrTampered) is
		// absent to most callers, but not to claim.
		return nil, 0, fmt.Errorf("%w: avatar %s: %w", ErrNotFound, avatarID, err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("avatar: load %s: %w", avatarID, err)
	}
	var rec avatarRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, 0, fmt.Errorf("avatar: record %s is corrupt: %w", avatarID, err)
	}
	s.recent.put(avatarID, e.Value, e.Revision)
	return &rec, e.Revision, nil
}

// loadForUpdate is load for a caller that will write the record back with
// compare-and-set and re-checks, inside its change, everything that can
// change (credential present, not cloned, counter): it may start from the
// cached copy, and a stale one only costs the retry.
func (s *Service) loadForUpdate(ctx context.Context, avatarID string) (*avatarRecord, uint64, error) {
	if data, rev, ok := s.recent.get(avatarID); ok {
		var rec avatarRecord
		if err := json.Unmarshal(data, &rec); err == nil {
			return &rec, rev, nil
		}
	}
	return s.load(ctx, avatarID)
}

// modify applies change to the avatar's current record and writes it with
// compare-and-set, re-reading and re-applying when another writer got
// there first, so no update is lost. change may refuse by returning an
// error, which modify returns as is. It returns the record written.
func (s *Service) modify(ctx context.Context, avatarID string, change func(*avatarRecord) error) (*avatarRecord, error) {
	return s.modifyFrom(ctx, avatarID, nil, 0, change)
}

// modifyFrom is modify starting from a record the caller has just read at
// revision rev (saving a round trip when nobody wrote since); rec may be
// nil. change gets rec itself on the first attempt.
func (s *Service) modifyFrom(ctx context.Context, avatarID string, rec *avatarRecord, rev uint64, change func(*avatarRecord) error) (*avatarRecord, error) {
	for range maxCASAttempts {
		if rec == nil {
			var err error
			if rec, rev, err = s.load(ctx, avatarID); err != nil {
				return nil, err
			}
		}
		if err := change(rec); err != nil {
			return nil, err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("avatar: encode %s: %w", avatarID, err)
		}
		newRev, err := s.avatars.Update(ctx, avatarID, data, rev)
		// Also when the outcome is unknown: the write may have landed.
		s.reads.forget(avatarID)
		if errors.Is(err, store.ErrConflict) {
			rec = nil
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("avatar: update %s: %w", avatarID, err)
		}
		s.recent.put(avatarID, data, newRev)
		return rec, nil
	}
	return nil, fmt.Errorf("avatar: update %s: %w after %d attempts", avatarID, store.ErrConflict, maxCASAttempts)
}

// claim makes key in b point to avatarID if it points nowhere yet, or to
// an avatar that does not hold it (owns reports that) and has not for
// staleClaim. It returns the revision written, or store.ErrConflict when
// the key is someone's.
func (s *Service) claim(ctx context.Context, b *store.Bucket, key, avatarID string, owns func(*avatarRecord) bool) (uint64, error) {
	for range 3 {
		rev, err := b.Create(ctx, key, []byte(avatarID))
		if !errors.Is(err, store.ErrConflict) {
			return rev, err
		}
		e, err := b.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return 0, err
		}
		owner := string(e.Value)
		rec, _, err := s.load(ctx, owner)
		switch {
		case err == nil && owns(rec):
			return 0, fmt.Errorf("%s belongs to %s: %w", key, owner, store.ErrConflict)
		case errors.Is(err, ErrNotFound) && s.existed(ctx, owner):
			// The owner's record was altered or deleted: taking its name,
			// credential or the bootstrap over would hand them to whoever
			// registers now. Avatars are never deleted, so only tampering
			// gets here; the claim stays until the record is restored.
			return 0, fmt.Errorf("%s belongs to %s, whose record was altered or deleted: %w", key, owner, store.ErrConflict)
		case err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalidInput):
			return 0, err
		case s.now().Sub(e.Created) < staleClaim:
			return 0, fmt.Errorf("%s is being claimed by %s: %w", key, owner, store.ErrConflict)
		}
		s.log.Warn("taking over an abandoned claim", "bucket", b.Name(), "key", key, "was", owner, "by", avatarID)
		rev, err = b.Update(ctx, key, []byte(avatarID), e.Revision)
		if !errors.Is(err, store.ErrConflict) {
			return rev, err
		}
	}
	return 0, fmt.Errorf("%s: %w", key, store.ErrConflict)
}

// existed reports whether the avatar's record was ever stored: its record
// does not verify, or its last change is a deletion. A store error counts
// as existed, so a claim is never taken over on a guess.
func (s *Service) existed(ctx context.Context, avatarID string) bool {
	e, err := s.avatars.Last(ctx, avatarID)
	return !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrTampered) || e.Deleted
}

// release deletes key from b if it still holds the revision we wrote.
func (s *Service) release(ctx context.Context, b *store.Bucket, key string, rev uint64) {
	ctx, cancel := store.Cleanup(ctx)
	defer cancel()
	if err := b.Delete(ctx, key, rev); err != nil {
		s.log.Warn("could not release claim; a later registration takes it over", "bucket", b.Name(), "key", key, "err", err)
	}
}

// Get returns the avatar with id.
func (s *Service) Get(ctx context.Context, avatarID string) (*Avatar, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rec, _, err := s.load(ctx, avatarID)
	if err != nil {
		return nil, err
	}
	return rec.Avatar.clone(), nil
}

// ByName returns the avatar whose handle is name.
func (s *Service) ByName(ctx context.Context, name string) (*Avatar, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rec, err := s.byName(ctx, name)
	if err != nil {
		return nil, err
	}
	return rec.Avatar.clone(), nil
}

func (s *Service) byName(ctx context.Context, name string) (*avatarRecord, error) {
	e, err := s.names.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: name %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("avatar: name %q: %w", name, err)
	}
	rec, _, err := s.load(ctx, string(e.Value))
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidInput) || (err == nil && rec.Name != name) {
		// A registration in flight or abandoned half way.
		return nil, fmt.Errorf("%w: name %q", ErrNotFound, name)
	}
	return rec, err
}

// DeleteCredential removes a passkey from the avatar. It refuses to remove
// the last one (ErrLastCredential); the realm requires a fresh step-up
// before calling it.
func (s *Service) DeleteCredential(ctx context.Context, avatarID string, credentialID []byte) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := s.modify(ctx, avatarID, func(r *avatarRecord) error {
		i := slices.IndexFunc(r.Credentials, func(c Credential) bool { return string(c.ID) == string(credentialID) })
		if i < 0 {
			return fmt.Errorf("%w: avatar %s has no credential %s", ErrNotFound, avatarID, credentialKey(credentialID))
		}
		if len(r.Credentials) == 1 {
			return fmt.Errorf("%w: credential %s of avatar %s", ErrLastCredential, credentialKey(credentialID), avatarID)
		}
		r.Credentials = slices.Delete(r.Credentials, i, i+1)
		delete(r.Counters, credentialKey(credentialID))
		return nil
	})
	if err != nil {
		return err
	}
	// The avatar record decides; the index entry only reserves the id.
	// Left behind, it is taken over by the next registration of the id.
	key := credentialKey(credentialID)
	if e, err := s.creds.Get(ctx, key); err == nil && string(e.Value) == avatarID {
		s.release(ctx, s.creds, key, e.Revision)
	}
	s.log.Info("credential removed", "avatar", avatarID, "credential", key)
	return nil
}

// webauthnUser presents an avatar to go-webauthn. The user handle is the
// avatar id's bytes, so a discoverable assertion names its avatar.
type webauthnUser struct {
	id, name, displayName string
	creds                 []Credential
}

func userOf(a *Avatar) *webauthnUser {
	return &webauthnUser{id: a.ID, name: a.Name, displayName: a.DisplayName, creds: a.Credentials}
}

func (u *webauthnUser) WebAuthnID() []byte          { return []byte(u.id) }
func (u *webauthnUser) WebAuthnName() string        { return u.name }
func (u *webauthnUser) WebAuthnDisplayName() string { return u.displayName }

func (u *webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.creds))
	for _, c := range u.creds {
		transports := make([]protocol.AuthenticatorTransport, len(c.Transports))
		for i, t := range c.Transports {
			transports[i] = protocol.AuthenticatorTransport(t)
		}
		out = append(out, webauthn.Credential{
			ID:                c.ID,
			PublicKey:         c.PublicKey,
			AttestationFormat: c.AttestationFormat,
			Transport:         transports,
			Flags: webauthn.CredentialFlags{
				UserPresent:    true,
				UserVerified:   c.UserVerified,
				BackupEligible: c.BackupEligible,
				BackupState:    c.BackedUp,
			},
			Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
		})
	}
	return out
}

// descriptors lists the credentials a sign-in may use: all but the ones
// caught cloned.
func descriptors(a *Avatar) []protocol.CredentialDescriptor {
	var out []protocol.CredentialDescriptor
	for _, c := range userOf(a).WebAuthnCredentials() {
		if a.Credential(c.ID).Cloned {
			continue
		}
		out = append(out, c.Descriptor())
	}
	return out
}

func (s *Service) optionsJSON(v any) (json.RawMessage, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("avatar: encode options: %w", err)
	}
	return data, nil
}

func stringsOf[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

// recordCache holds encoded avatar records with their revisions. It is
// bounded: when full, an arbitrary entry makes room, which only costs a
// read later.
type recordCache struct {
	mu      sync.Mutex
	entries map[string]cachedRecord
}

type cachedRecord struct {
	data []byte
	rev  uint64
}

const recordCacheSize = 16384

func (c *recordCache) get(id string) ([]byte, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	return e.data, e.rev, ok
}

func (c *recordCache) put(id string, data []byte, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]cachedRecord)
	}
	if old, ok := c.entries[id]; ok && old.rev > rev {
		return // never replace a newer revision with an older one
	}
	if _, ok := c.entries[id]; !ok && len(c.entries) >= recordCacheSize {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = cachedRecord{data: data, rev: rev}
}
