package identity

import (
	"context"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/avatar/session/revocation"
)

// Every session the identity part ends (sign-out, "sign out everywhere",
// one session, the session cap, a cloned passkey) is denied on every
// node before the store has it, through the Revoker; the store's record
// follows, retried in the background while the sessions bucket cannot be
// written (see package revocation). Sign-out answers with how many nodes
// were told and whether the store has it.

// revokeOne ends one session everywhere.
func (a *API) revokeOne(ctx context.Context, s session.Session, reason string) (revocation.Outcome, error) {
	rev := session.Revocation{SessionID: s.ID, Avatar: s.Avatar, Reason: reason, At: time.Now(), Expires: s.Expires}
	return a.Revoker.Revoke(ctx, []session.Revocation{rev}, func(ctx context.Context) error {
		return a.Sessions.Revoke(ctx, s.ID, reason)
	})
}

// revokeAvatar ends every session of an avatar everywhere and returns how
// many sessions were denied.
func (a *API) revokeAvatar(ctx context.Context, avatarID, reason string) (int, revocation.Outcome, error) {
	revs, err := a.Sessions.AvatarRevocations(ctx, avatarID, reason)
	if err != nil {
		return 0, revocation.Outcome{}, err
	}
	out, err := a.Revoker.Revoke(ctx, revs, func(ctx context.Context) error {
		_, err := a.Sessions.RevokeAvatar(ctx, avatarID, reason)
		return err
	})
	return len(revs), out, err
}

// revokedView is the answer of a sign-out.
func revokedView(n int, out revocation.Outcome) map[string]any {
	return map[string]any{"revoked": n, "nodes_told": out.NodesTold, "nodes_live": out.NodesLive, "stored": out.Stored}
}
