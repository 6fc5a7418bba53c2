package identity

import (
	"context"
	"sync/atomic"

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
	rev := session.Revocation{SessionID: s.ID, Avatar: s.Avatar, Reason: reason, At: a.Now(), Expires: s.Expires}
	return a.Revoker.Revoke(ctx, []session.Revocation{rev}, func(ctx context.Context) error {
		return a.Sessions.Revoke(ctx, s.ID, reason)
	})
}

// revokeAvatar ends every session of an avatar everywhere: every node
// denies each session of the avatar created until now before anything is
// read from the store (the avatar's list of sessions may be unreadable,
// its bucket electing a leader), then the store marks them revoked. It
// returns how many live sessions the store marked revoked, 0 when the
// store does not have it yet (out.Stored false: the background attempts
// and the nodes told store it).
func (a *API) revokeAvatar(ctx context.Context, avatarID, reason string) (int, revocation.Outcome, error) {
	var revoked atomic.Int64
	rev := session.AvatarRevocation{Avatar: avatarID, Reason: reason, At: a.Now()}
	out, err := a.Revoker.RevokeAvatar(ctx, rev, func(ctx context.Context) error {
		n, err := a.Sessions.RevokeAvatarUntil(ctx, avatarID, reason, rev.At)
		revoked.Add(int64(n))
		return err
	})
	if err != nil || !out.Stored {
		return 0, out, err
	}
	return int(revoked.Load()), out, nil
}

// revokedView is the answer of a sign-out.
func revokedView(n int, out revocation.Outcome) map[string]any {
	return map[string]any{"revoked": n, "nodes_told": out.NodesTold, "nodes_live": out.NodesLive, "stored": out.Stored}
}
