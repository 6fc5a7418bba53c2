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

// startIdentity opens the step-up proofs and binds the identity API to
// the avatar service, sessions and trust, which start has made.
func (r *Realm) startIdentity(ctx context.Context) error {
	proofs, err := identity.NewStepUps(ctx, r.store, r.cfg.Clock.Now, func(key string) {
		r.tampers.Report(store.TamperEvent{Bucket: identity.StepUpsBucket, Key: key, Reason: node.ReasonStepUpReplayed})
	})
	if err != nil {
		return fmt.Errorf("realm: step-ups: %w", err)
	}
	r.stepups = proofs
	return r.identity.Bind(identity.Deps{
		Log:         r.log,
		Node:        r.cfg.Node,
		Ceremonies:  r.avatars,
		Directory:   r.avatars,
		Sessions:    r.sessions,
		Revoker:     revoker{r},
		Trust:       r.trust,
		StepUps:     proofs,
		AuditNoWait: r.decisions.RecordQueued,
		PasskeyAdded: func(avatarID string, cred *avatar.Credential) {
			r.live.AnnouncePasskeyAdded(avatarID, cred) // made after, called by requests
		},
		SignedOutEverywhere: func(ctx context.Context, avatarID string) bool {
			return r.delegations.StopOwnersAgentsNow(ctx, avatarID, "its owner signed out everywhere")
		},
		CeremonyTimed: r.timings.Ceremony,
	})
}
