package realm

import (
	"context"
	"fmt"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
	"github.com/zerorealm/zerorealm/realm/internal/node"
)

// The identity part (passkeys, sessions, roles, step-ups) and what the
// realm gives it: see realm/internal/identity.

// newIdentity makes the identity API when the realm is made: its routes
// are registered before the node starts.
func (r *Realm) newIdentity() (*identity.API, error) {
	return identity.New(identity.Config{
		Edge:      r.edge,
		AdminRole: r.cfg.AdminRole,
		Limits: identity.Limits{
			CeremonyRate:         r.cfg.CeremonyRate,
			CeremonyBurst:        r.cfg.CeremonyBurst,
			MaxPendingCeremonies: r.cfg.MaxPendingCeremonies,
			MaxSessionsPerAvatar: r.cfg.MaxSessionsPerAvatar,
		},
	})
}

// startIdentity opens the step-up proofs and binds the identity API to
// the avatar service, sessions and trust, which start has made.
func (r *Realm) startIdentity(ctx context.Context) error {
	proofs, err := identity.NewStepUps(ctx, r.store, func(key string) {
		r.tampers.Report(store.TamperEvent{Bucket: identity.StepUpsBucket, Key: key, Reason: node.ReasonStepUpReplayed})
	})
	if err != nil {
		return fmt.Errorf("realm: step-ups: %w", err)
	}
	r.stepups = &stepUpProofs{proofs}
	return r.identity.Bind(identity.Deps{
		Log:          r.log,
		Node:         r.cfg.Node,
		Ceremonies:   r.avatars,
		Directory:    r.avatars,
		Sessions:     r.sessions,
		Revoker:      revoker{r},
		Trust:        r.trust,
		StepUps:      proofs,
		AuditNoWait:  r.auditAsync,
		PasskeyAdded: r.announcePasskeyAdded,
		SignedOutEverywhere: func(ctx context.Context, avatarID string) error {
			return r.stopOwnersAgents(ctx, avatarID, "its owner signed out everywhere")
		},
	})
}

// bootstrap is how this node makes, and remembers it made, the realm's
// first administrator.
func (r *Realm) bootstrap() *identity.Bootstrap {
	return &identity.Bootstrap{
		Disabled:    r.cfg.DisableBootstrapAdmin,
		Roles:       r.cfg.BootstrapAdminRoles,
		DataDir:     r.cfg.DataDir,
		Node:        r.cfg.Node,
		Log:         r.log,
		AuditNoWait: r.auditAsync,
	}
}

// avatarConfig configures the avatar service: passkeys bound to the
// realm's relying party and origins, the admin role, and the bootstrap.
func (r *Realm) avatarConfig() avatar.Config {
	return r.bootstrap().Configure(avatar.Config{
		RPID: r.cfg.RPID, Origins: r.origins(), AdminRole: r.cfg.AdminRole, CeremonyTTL: identity.CeremonyTTL, Logger: r.log,
	})
}

// stepUpProofs are the identity part's proofs as the realm's other files
// spend them.
type stepUpProofs struct{ *identity.StepUps }

func (p *stepUpProofs) consume(ctx context.Context, sessionID string, digest []byte) error {
	return p.Consume(ctx, sessionID, digest)
}

// trustView is the published trust view, for a scene's access answer.
var trustView = identity.TrustView
