package realm

import (
	"context"
	"fmt"
	"time"

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
	proofs, err := identity.NewStepUps(ctx, r.store, func(key string) {
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
			return r.stopOwnersAgentsOrLater(ctx, avatarID, "its owner signed out everywhere")
		},
		CeremonyTimed: r.timings.Ceremony,
	})
}

// Backoff of stopOwnersAgentsOrLater's background attempts.
const (
	agentStopRetryMin = 200 * time.Millisecond
	agentStopRetryMax = 5 * time.Second
)

// stopOwnersAgentsOrLater stops the avatar's agents now or, when their
// revocations cannot be stored (the bucket is electing a leader), keeps
// trying in the background until they are or the node stops; a node
// whose revocation feed is lost refuses every agent meanwhile
// (agents.ErrRevocationsUnknown). It reports whether they were stopped
// now.
func (r *Realm) stopOwnersAgentsOrLater(ctx context.Context, avatarID, why string) bool {
	err := r.delegations.StopOwnersAgents(ctx, avatarID, why)
	if err == nil {
		return true
	}
	bg := r.agentsBg
	if bg == nil {
		r.log.Error("an avatar's agents were not stopped", "avatar", avatarID, "why", why, "err", err)
		return false
	}
	r.log.Warn("an avatar's agents not stopped yet; retrying in the background", "avatar", avatarID, "err", err)
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		wait := agentStopRetryMin
		for {
			t := time.NewTimer(wait)
			select {
			case <-bg.Done():
				t.Stop()
				r.log.Error("an avatar's agents were not stopped before the node stopped", "avatar", avatarID, "why", why)
				return
			case <-t.C:
			}
			actx, cancel := context.WithTimeout(bg, agentStopRetryMax)
			err := r.delegations.StopOwnersAgents(actx, avatarID, why)
			cancel()
			if err == nil {
				r.log.Info("an avatar's agents stopped", "avatar", avatarID, "why", why)
				return
			}
			wait = min(2*wait, agentStopRetryMax)
		}
	}()
	return false
}
