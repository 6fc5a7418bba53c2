package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/avatar/session/revocation"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/trust"
)

// Ceremonies runs the WebAuthn ceremonies (avatar.Service).
type Ceremonies interface {
	BeginRegistration(ctx context.Context, reg avatar.Registration, existingAvatarID string) (avatar.Ceremony, error)
	FinishRegistration(ctx context.Context, ceremonyID string, credentialJSON []byte) (*avatar.Avatar, *avatar.Credential, error)
	BeginLogin(ctx context.Context, name string) (avatar.Ceremony, error)
	FinishLogin(ctx context.Context, ceremonyID string, credentialJSON []byte) (avatar.Assertion, error)
	BeginStepUp(ctx context.Context, avatarID string, actionDigest []byte) (avatar.Ceremony, error)
	FinishStepUp(ctx context.Context, ceremonyID, avatarID string, actionDigest, credentialJSON []byte) (avatar.Assertion, error)
}

// Directory is the avatar records an avatar and its administrators change
// (avatar.Service).
type Directory interface {
	Get(ctx context.Context, id string) (*avatar.Avatar, error)
	List(ctx context.Context, after string, limit int) ([]*avatar.Avatar, string, error)
	DeleteCredential(ctx context.Context, avatarID string, credentialID []byte) error
	CheckRoleChange(ctx context.Context, avatarID string, roles []string) error
	ChangeRoles(ctx context.Context, avatarID string, roles []string) (avatar.RoleChange, error)
}

// Sessions issues, lists and ends sessions (session.Manager).
type Sessions interface {
	Create(ctx context.Context, avatarID string, meta session.Meta) (string, session.Session, error)
	Get(ctx context.Context, id string) (session.Session, error)
	List(ctx context.Context, avatarID string) ([]session.Session, error)
	Revoke(ctx context.Context, id, reason string) error
	RevokeAvatar(ctx context.Context, avatarID, reason string) (int, error)
	// RevokeAvatarUntil is RevokeAvatar for the sessions created at or
	// before until.
	RevokeAvatarUntil(ctx context.Context, avatarID, reason string, until time.Time) (int, error)
	// Remembered is a session as this node last read it, for ending it
	// while the store cannot be read.
	Remembered(id string) (session.Session, bool)
}

// Revoker makes revocations take effect on every realm node before the
// store has them, then stores them with store (revocation.Broadcaster).
type Revoker interface {
	Revoke(ctx context.Context, revs []session.Revocation, store func(context.Context) error) (revocation.Outcome, error)
	// RevokeAvatar ends every session of the avatar created up to the
	// revocation's time, without listing them first.
	RevokeAvatar(ctx context.Context, rev session.AvatarRevocation, store func(context.Context) error) (revocation.Outcome, error)
}

// Trust is the realm's trust tracking of sessions: what a ceremony tells it
// and what it answers.
type Trust interface {
	// ObservePasskey records a passkey assertion (sign-in or step-up) as
	// evidence for the session.
	ObservePasskey(ctx context.Context, sess session.Session, seen trust.PasskeyAssertion) (trust.Assessment, error)
	// ObserveSignIn records where a new session comes from and how many
	// live sessions its avatar holds.
	ObserveSignIn(ctx context.Context, sess session.Session, address string, concurrent int)
	// ObserveClone records that the session's avatar holds a cloned
	// passkey (credential: its base64url id).
	ObserveClone(ctx context.Context, sess session.Session, credential string)
	Assess(ctx context.Context, sess session.Session) trust.Assessment
}

// Config is what the identity API is made with, before the realm starts:
// its routes are registered while the node is still starting (they
// answer 503 until it is ready).
type Config struct {
	Edge *edge.Edge
	// AdminRole is the role that administers avatars and roles.
	AdminRole string
	// Limits; 0 turns each off. See Limits.
	Limits Limits
	// Now is the clock of the ceremony limits, of sessions counted live
	// and of revocations (time.Now if nil).
	Now func() time.Time
}

// Deps is what the identity API needs from the rest of the realm once
// it has started. See API.Bind.
type Deps struct {
	Log *slog.Logger
	// Node names this node in the sessions it issues.
	Node string

	Ceremonies Ceremonies
	Directory  Directory
	Sessions   Sessions
	// Revoker ends sessions: sign-out, "sign out everywhere", one
	// session, the session cap and a cloned passkey all go through it.
	Revoker Revoker
	Trust   Trust
	StepUps *StepUps
	// AuditNoWait records a decision without waiting for the record:
	// every decision here is one whose effect does not depend on its
	// record existing first (a sign-in, a denial, a change already made).
	AuditNoWait func(ctx context.Context, ev audit.Event)
	// PasskeyAdded tells every session of the avatar about a passkey
	// added to it, so an owner sees a passkey they did not add.
	PasskeyAdded func(avatarID string, cred *avatar.Credential)
	// SignedOutEverywhere, when set, stops everything else that acts for
	// the avatar (its agents) once its sessions are signed out
	// everywhere: now, or in the background when it cannot now. It
	// reports whether it did now.
	SignedOutEverywhere func(ctx context.Context, avatarID string) bool
	// CeremonyTimed, when set, is told how long each ceremony's finish took
	// to verify: ceremony registration, sign-in or step-up; outcome ok or
	// refused.
	CeremonyTimed func(ceremony, outcome string, took time.Duration)
}

// API serves the passkey ceremonies, the avatar's own passkeys and
// sessions, and the role API.
type API struct {
	Config
	// *Deps is bound once by the composition root before the realm
	// reports ready; handlers read it only behind edge.WhenReady, whose
	// atomic ready check orders the write before every read.
	*Deps
	edge *edge.Edge

	// The ceremony limits of this node; nil when turned off.
	ceremonyRate *edge.RateLimiter
	pending      *pendingCeremonies
}

// New returns the API; it serves once Bind has given it its Deps.
func New(cfg Config) (*API, error) {
	if cfg.Edge == nil || cfg.AdminRole == "" {
		return nil, errors.New("identity: the edge and the admin role are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{Config: cfg, edge: cfg.Edge}
	if l := cfg.Limits; l.CeremonyRate > 0 {
		a.ceremonyRate = edge.NewRateLimiter(l.CeremonyRate, l.CeremonyBurst, cfg.Now)
	}
	if l := cfg.Limits; l.MaxPendingCeremonies > 0 {
		a.pending = newPendingCeremonies(l.MaxPendingCeremonies, CeremonyTTL, cfg.Now)
	}
	return a, nil
}

// Bind gives the API what it serves with. The composition root calls it
// once, during start-up, before the realm reports ready.
func (a *API) Bind(deps Deps) error {
	switch {
	case deps.Log == nil:
		return errors.New("identity: a logger is required")
	case deps.Ceremonies == nil || deps.Directory == nil || deps.Sessions == nil || deps.Revoker == nil || deps.Trust == nil || deps.StepUps == nil:
		return errors.New("identity: the avatar service, sessions, the revoker, trust and step-ups are required")
	case deps.AuditNoWait == nil || deps.PasskeyAdded == nil:
		return errors.New("identity: an auditor and a passkey notice are required")
	}
	a.Deps = &deps
	return nil
}

// Routes registers the identity routes on mux.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/webauthn/register/begin", a.edge.Public(a.handleRegisterBegin))
	mux.HandleFunc("POST /v1/webauthn/register/finish", a.edge.Public(a.handleRegisterFinish))
	mux.HandleFunc("POST /v1/webauthn/login/begin", a.edge.Public(a.handleLoginBegin))
	mux.HandleFunc("POST /v1/webauthn/login/finish", a.edge.Public(a.handleLoginFinish))
	mux.HandleFunc("POST /v1/webauthn/stepup/begin", a.edge.Authed(a.handleStepUpBegin))
	mux.HandleFunc("POST /v1/webauthn/stepup/finish", a.edge.Authed(a.handleStepUpFinish))
	mux.HandleFunc("GET /v1/avatars/me", a.edge.Authed(a.handleMe))
	mux.HandleFunc("DELETE /v1/avatars/me/passkeys/{id}", a.edge.Authed(a.handleDeletePasskey))
	mux.HandleFunc("GET /v1/sessions", a.edge.Authed(a.handleSessions))
	mux.HandleFunc("POST /v1/sessions/logout", a.edge.EndingSession(edge.RecallFirst, a.handleLogout))
	mux.HandleFunc("POST /v1/sessions/logout-all", a.edge.EndingSession(edge.StoreFirst, a.handleLogoutAll))
	mux.HandleFunc("DELETE /v1/sessions/{id}", a.edge.EndingSession(edge.StoreFirst, a.handleRevokeSession))
	roles := roleAdmin{a}
	mux.HandleFunc("GET /v1/avatars", a.edge.Authed(roles.handleListAvatars))
	mux.HandleFunc("POST /v1/avatars/{id}/roles/digest", a.edge.Authed(roles.handleRolesDigest))
	mux.HandleFunc("PUT /v1/avatars/{id}/roles", a.edge.Authed(roles.handleSetRoles))
}

// auditAllow and auditDeny record a decision taken while serving req.
func (a *API) auditAllow(req *http.Request, actor, action, resource, reason string, signals map[string]any) {
	a.AuditNoWait(req.Context(), edge.AllowEvent(req, actor, action, resource, reason, signals))
}

func (a *API) auditDeny(req *http.Request, actor, action, resource string, cause error) {
	a.AuditNoWait(req.Context(), edge.DenyEvent(req, actor, action, resource, cause))
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// noStrings is s, or an empty list instead of nil, so JSON says [].
func noStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
