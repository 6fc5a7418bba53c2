package session

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/zerorealm/zerorealm/internal/store"
)

var (
	// ErrInvalidSession reports a token or session ID that is malformed,
	// unknown, or does not match its record. Callers answer it like a
	// missing credential (401), without saying which.
	ErrInvalidSession = errors.New("session: invalid session")

	// ErrExpired reports a session past its absolute lifetime or idle for
	// longer than the idle timeout. The *Error carries which.
	ErrExpired = errors.New("session: expired")

	// ErrRevoked reports a session that was signed out or revoked by the
	// realm. The *Error carries the reason given to Revoke.
	ErrRevoked = errors.New("session: revoked")

	// ErrTooManySessions reports that the avatar already holds
	// MaxPerAvatar unexpired sessions, revoked ones included; Create
	// refuses rather than let one avatar's index grow without bound.
	ErrTooManySessions = errors.New("session: too many sessions for the avatar")

	// ErrInvalidArgument reports a Config or an argument refused before
	// anything is stored.
	ErrInvalidArgument = errors.New("session: invalid argument")
)

// errMalformedToken is built once: scanners and broken clients send
// garbage often, and refusing it should cost nothing.
var errMalformedToken = fmt.Errorf("%w: malformed token (want %q followed by 43 base64url characters)", ErrInvalidSession, TokenPrefix)

// Reasons an *Error with ErrExpired gives.
const (
	ReasonIdle     = "idle timeout"
	ReasonLifetime = "lifetime reached"
)

// Error is the detail of ErrExpired and ErrRevoked: which session, whose,
// and why. It never holds the token. errors.Is(err, ErrRevoked) and
// errors.Is(err, ErrExpired) test its kind.
type Error struct {
	Kind      error // ErrExpired or ErrRevoked
	SessionID string
	Avatar    string
	Reason    string    // ReasonIdle, ReasonLifetime, or the revocation's reason
	At        time.Time // when it was revoked or expired
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v: session %s: %s", e.Kind, e.SessionID, e.Reason)
}

func (e *Error) Unwrap() error { return e.Kind }

const (
	defaultIdleTimeout = 30 * time.Minute
	defaultLifetime    = 12 * time.Hour
	defaultTouchEvery  = time.Minute

	// ttlMargin keeps records readable a little past Expires, so that a
	// node whose clock runs behind still finds the record (and answers
	// "expired" or "revoked") instead of "unknown".
	ttlMargin = 5 * time.Minute

	// MaxPerAvatar bounds the unexpired sessions of one avatar. A person
	// signs in a handful of times a day; hundreds within one lifetime
	// means a script, and each entry costs every RevokeAvatar a read.
	MaxPerAvatar = 256

	maxAvatarLen     = 256
	maxCredentialLen = 1024
	maxNodeLen       = 128
	maxUserAgentLen  = 256
	maxReasonLen     = 256

	sessionsBucket = "sessions"
	indexBucket    = "avatar-sessions"
)

// Config configures a Manager. Zero values are the documented defaults.
// Every realm node sharing a store must use the same Lifetime.
type Config struct {
	// IdleTimeout expires a session unused this long. Default 30m.
	IdleTimeout time.Duration
	// Lifetime is the absolute life of a session, never extended.
	// Default 12h.
	Lifetime time.Duration
	// TouchEvery is how stale LastSeen may get before Authenticate
	// rewrites it, so authenticating is a read most of the time. Default
	// 1m; must be shorter than IdleTimeout.
	TouchEvery time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives revocations and failed touches. Default: discarded.
	Logger *slog.Logger
}

// Manager issues and checks sessions. It is safe for concurrent use, and
// any number of Managers on any number of nodes may share one store.
type Manager struct {
	sessions   *store.Bucket
	index      *store.Bucket
	idle       time.Duration
	lifetime   time.Duration
	touchEvery time.Duration
	now        func() time.Time
	log        *slog.Logger
	cache      liveCache
	revoked    revokedSet
	// avatarsDenied are the "sign out everywhere" this node heard of
	// (DenyAvatar).
	avatarsDenied avatarDenials
	denials       denialFeeds
}

// Session is what the realm knows about one session. It never holds the
// token. CSRF is left out of JSON so that listing sessions cannot leak it;
// the realm hands it to the browser explicitly at sign-in.
type Session struct {
	ID            string    `json:"id"` // public, non-secret: safe to log, list and revoke by
	Avatar        string    `json:"avatar"`
	Credential    string    `json:"credential,omitempty"` // base64url passkey credential ID used to sign in
	Created       time.Time `json:"created"`
	LastSeen      time.Time `json:"lastSeen"`
	Expires       time.Time `json:"expires"` // Created + Lifetime
	Revoked       bool      `json:"revoked,omitempty"`
	RevokedAt     time.Time `json:"revokedAt,omitzero"`
	RevokedReason string    `json:"revokedReason,omitempty"`
	CSRF          string    `json:"-"`
	Node          string    `json:"node,omitempty"`      // realm node that created it
	UserAgent     string    `json:"userAgent,omitempty"` // truncated
}

// Meta is the informational part of a new session.
type Meta struct {
	Credential string // base64url credential ID; at most 1024 bytes
	Node       string // truncated to 128 bytes
	UserAgent  string // truncated to 256 bytes
}

// New validates cfg and declares the "sessions" and "avatar-sessions"
// buckets, with a TTL of Lifetime plus a margin.
func New(ctx context.Context, st *store.Store, cfg Config) (*Manager, error) {
	if st == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidArgument)
	}
	if cfg.IdleTimeout < 0 || cfg.Lifetime < 0 || cfg.TouchEvery < 0 {
		return nil, fmt.Errorf("%w: negative duration in config", ErrInvalidArgument)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = defaultLifetime
	}
	if cfg.TouchEvery == 0 {
		cfg.TouchEvery = defaultTouchEvery
	}
	if cfg.TouchEvery >= cfg.IdleTimeout {
		// LastSeen may lag by TouchEvery, so a session in constant use
		// would still idle out.
		return nil, fmt.Errorf("%w: TouchEvery %v must be shorter than IdleTimeout %v", ErrInvalidArgument, cfg.TouchEvery, cfg.IdleTimeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ttl := cfg.Lifetime + ttlMargin
	// Leader reads: a node must never accept a session from a replica that
	// has not yet applied its revocation.
	sessions, err := st.Bucket(ctx, store.BucketConfig{Name: sessionsBucket, TTL: ttl, LeaderReads: true, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	index, err := st.Bucket(ctx, store.BucketConfig{Name: indexBucket, TTL: ttl, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return &Manager{
		sessions:   sessions,
		index:      index,
		idle:       cfg.IdleTimeout,
		lifetime:   cfg.Lifetime,
		touchEvery: cfg.TouchEvery,
		now:        cfg.Now,
		log:        cfg.Logger,
	}, nil
}

// Create issues a session for avatarID and returns its token, which is
// shown to the caller once and never stored. If a RevokeAvatar of the same
// avatar pre-empts it half-way, Create fails with ErrRevoked.
func (m *Manager) Create(ctx context.Context, avatarID string, meta Meta) (token string, s Session, err error) {
	if err := validAvatar(avatarID); err != nil {
		return "", Session{}, err
	}
	if len(meta.Credential) > maxCredentialLen {
		return "", Session{}, fmt.Errorf("%w: credential ID of %d bytes, at most %d", ErrInvalidArgument, len(meta.Credential), maxCredentialLen)
	}
	token, hash, id := newToken()
	now := m.now()
	rec := record{
		Hash:       hash[:],
		Avatar:     avatarID,
		Credential: meta.Credential,
		Created:    now,
		LastSeen:   now,
		Expires:    now.Add(m.lifetime),
		CSRF:       newCSRF(),
		Node:       truncate(meta.Node, maxNodeLen),
		UserAgent:  truncate(meta.UserAgent, maxUserAgentLen),
	}
	// Index first: a session must never exist that its avatar's
	// "sign out everywhere" cannot find.
	if err := m.addToIndex(ctx, avatarID, id, rec.Expires); err != nil {
		return "", Session{}, err
	}
	value, err := rec.marshal()
	if err != nil {
		return "", Session{}, err
	}
	if _, err := m.sessions.Create(ctx, id, value); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Either RevokeAvatar pre-empted this session or, with odds
			// of 2^-128, the ID exists: both mean "do not issue".
			return "", Session{}, fmt.Errorf("session: create %s: %w", id, ErrRevoked)
		}
		return "", Session{}, fmt.Errorf("session: create %s: %w", id, err)
	}
	return token, rec.session(id), nil
}

// Authenticate returns the session of token if it is live. Malformed,
// unknown or mismatching tokens are ErrInvalidSession (malformed ones
// without any store access); revoked sessions ErrRevoked and expired ones
// ErrExpired, both as *Error. A live session's LastSeen is rewritten when
// it is at least TouchEvery old.
func (m *Manager) Authenticate(ctx context.Context, token string) (Session, error) {
	hash, id, ok := parseToken(token)
	if !ok {
		return Session{}, errMalformedToken
	}
	rec, err := m.authenticate(ctx, hash, id)
	if err != nil {
		return Session{}, err
	}
	return rec.session(id), nil
}

// authenticate is Authenticate after the token parsed; it returns the
// record as now stored.
func (m *Manager) authenticate(ctx context.Context, hash tokenHash, id string) (record, error) {
	// Before the store: a denial must hold while the store cannot be
	// read. The ID is a hash of the token, so only its holder gets here.
	if err := m.deniedErr(id); err != nil {
		return record{}, err
	}
	rec, rev, err := m.load(ctx, id)
	if err != nil {
		return record{}, err
	}
	// The ID matched on half the hash; the whole hash decides, in
	// constant time, so knowing a public ID gets an attacker nowhere.
	if subtle.ConstantTimeCompare(rec.Hash, hash[:]) != 1 {
		return record{}, fmt.Errorf("%w: unknown session", ErrInvalidSession)
	}
	return m.use(ctx, id, rec, rev)
}

// use records a use of the session id read as rec at revision rev, if it
// is live, and returns the record as now stored.
func (m *Manager) use(ctx context.Context, id string, rec record, rev uint64) (record, error) {
	now := m.now()
	if err := m.check(id, &rec, now); err != nil {
		return record{}, err
	}
	if at, ok := m.revoked.has(id, now); ok {
		// The store says live, this node saw it revoked: an older record
		// was put back. The revocation stands.
		m.log.Warn("a revoked session's record reads live again: refused", "session", id, "avatar", rec.Avatar)
		return record{}, &Error{Kind: ErrRevoked, SessionID: id, Avatar: rec.Avatar, Reason: ReasonRolledBack, At: at}
	}
	if now.Sub(rec.LastSeen) >= m.touchEvery {
		if err := m.touch(ctx, id, rec, rev, now); err != nil {
			return record{}, err
		}
		rec.LastSeen = now
	}
	return rec, nil
}

// Touch records use of the session sessionID without its token, as
// Authenticate does for a token: the realm calls it for a session it
// authenticated earlier whose connection is still in use (a live
// WebSocket's traffic is use of its session). It returns the session as
// now stored, or ErrRevoked or ErrExpired as *Error, so the caller ends a
// connection whose session ended. It authenticates nothing: the public ID
// is not a credential, and Touch must never be reached with one a client
// chose. Unknown or malformed IDs are ErrInvalidSession.
func (m *Manager) Touch(ctx context.Context, sessionID string) (Session, error) {
	if !validID(sessionID) {
		return Session{}, fmt.Errorf("%w: malformed session ID", ErrInvalidSession)
	}
	if err := m.deniedErr(sessionID); err != nil {
		return Session{}, err
	}
	rec, rev, err := m.load(ctx, sessionID)
	if err != nil {
		return Session{}, err
	}
	if rec, err = m.use(ctx, sessionID, rec, rev); err != nil {
		return Session{}, err
	}
	return rec.session(sessionID), nil
}

// check decides whether rec may authenticate at now.
func (m *Manager) check(id string, rec *record, now time.Time) error {
	switch {
	case rec.Revoked:
		return &Error{Kind: ErrRevoked, SessionID: id, Avatar: rec.Avatar, Reason: rec.RevokedReason, At: rec.RevokedAt}
	case m.avatarsDenied.covers(rec, now):
		d, _ := m.avatarsDenied.get(rec.Avatar, now)
		return &Error{Kind: ErrRevoked, SessionID: id, Avatar: rec.Avatar, Reason: d.reason, At: d.at}
	case !now.Before(rec.Expires):
		return &Error{Kind: ErrExpired, SessionID: id, Avatar: rec.Avatar, Reason: ReasonLifetime, At: rec.Expires}
	case now.Sub(rec.LastSeen) >= m.idle:
		return &Error{Kind: ErrExpired, SessionID: id, Avatar: rec.Avatar, Reason: ReasonIdle, At: rec.LastSeen.Add(m.idle)}
	}
	return nil
}

// touch records use at now. Losing the compare-and-set means another
// write came first; if that write was a revocation, it wins.
func (m *Manager) touch(ctx context.Context, id string, rec record, rev uint64, now time.Time) error {
	rec.LastSeen = now
	value, err := rec.marshal()
	if err != nil {
		return err
	}
	_, err = m.sessions.Update(ctx, id, value, rev)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrConflict):
		current, _, err := m.load(ctx, id)
		if err != nil {
			return err
		}
		if current.Revoked {
			return m.check(id, &current, now)
		}
		return nil // another node touched it
	default:
		m.log.Warn("session touch failed; idle time not extended", "session", id, "avatar", rec.Avatar, "err", err)
		return nil
	}
}

// Get returns the session with the public ID sessionID whatever its state
// (revoked and expired ones too, until the store drops them); it is not an
// authentication. Unknown or malformed IDs are ErrInvalidSession.
func (m *Manager) Get(ctx context.Context, sessionID string) (Session, error) {
	if !validID(sessionID) {
		return Session{}, fmt.Errorf("%w: malformed session ID", ErrInvalidSession)
	}
	rec, _, err := m.load(ctx, sessionID)
	if err != nil {
		return Session{}, err
	}
	return rec.session(sessionID), nil
}

// CheckCSRF reports, in constant time, whether token is the session's CSRF
// secret. A session without one matches nothing.
func (m *Manager) CheckCSRF(sess Session, token string) bool {
	return sess.CSRF != "" && subtle.ConstantTimeCompare([]byte(sess.CSRF), []byte(token)) == 1
}

// load reads and decodes the record of id.
func (m *Manager) load(ctx context.Context, id string) (record, uint64, error) {
	e, err := m.sessions.Get(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return record{}, 0, fmt.Errorf("%w: unknown session", ErrInvalidSession)
		}
		return record{}, 0, fmt.Errorf("session: read %s: %w", id, err)
	}
	rec, err := unmarshalRecord(e.Value)
	if err != nil {
		return record{}, 0, fmt.Errorf("session: record %s: %w", id, err)
	}
	return rec, e.Revision, nil
}

func validAvatar(avatarID string) error {
	if avatarID == "" || len(avatarID) > maxAvatarLen {
		return fmt.Errorf("%w: avatar ID of %d bytes, want 1..%d", ErrInvalidArgument, len(avatarID), maxAvatarLen)
	}
	return nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
