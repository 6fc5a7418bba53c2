package realm

import (
	"context"
	"fmt"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/avatar/session/revocation"
)

// Revocations take effect on every node before the store has them (see
// package revocation): this node denies the sessions, tells the other live
// nodes over core NATS (authenticated like presence) and waits for their
// acknowledgements, then stores the revocation, retrying in the background
// while the sessions bucket cannot be written; each told node stores it
// too, a few seconds later, if it is not stored by then. The identity part ends
// sessions through it (identity.Deps.Revoker).

// startRevocationBroadcast hears the other nodes' revocations until bg ends.
func (r *Realm) startRevocationBroadcast(bg context.Context) error {
	b, err := revocation.New(revocation.Config{
		Conn: r.nc, Prefix: r.cfg.Prefix, Node: r.cfg.Node,
		Auth: r.clusterAuth, Sessions: r.sessions,
		Peers: r.otherNodes,
		// A told node stores the revocation too, a few seconds later,
		// should the node that made it stop before storing it.
		Redrive: func(ctx context.Context, rev session.Revocation) error {
			return r.sessions.Revoke(ctx, rev.SessionID, rev.Reason)
		},
		RedriveAvatar: func(ctx context.Context, rev session.AvatarRevocation) error {
			_, err := r.sessions.RevokeAvatarUntil(ctx, rev.Avatar, rev.Reason, rev.At)
			return err
		},
		OnRefused: r.refusedRevocation("revocation"),
		Logger:    r.log,
	})
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.revoker = b
	r.bgDone.Go(func() { <-bg.Done(); b.Close() })
	return nil
}

// otherNodes: the other live nodes; refusedRevocation: a message that does not verify.
func (r *Realm) otherNodes() []string { return r.nodes.Others(r.live.Peers()) }
func (r *Realm) refusedRevocation(what string) func(string, error) {
	return func(kind string, err error) {
		r.tampers.Forged(what + " " + kind)
		r.log.Warn("dropped a revocation message that does not verify", "kind", what+" "+kind, "err", err)
	}
}

// revoker lends the node's broadcaster to the identity part, which is
// bound before the broadcaster starts and calls it only once the node
// serves.
type revoker struct{ r *Realm }

func (v revoker) Revoke(ctx context.Context, revs []session.Revocation, store func(context.Context) error) (revocation.Outcome, error) {
	return v.r.revoker.Revoke(ctx, revs, store)
}

func (v revoker) RevokeAvatar(ctx context.Context, rev session.AvatarRevocation, store func(context.Context) error) (revocation.Outcome, error) {
	return v.r.revoker.RevokeAvatar(ctx, rev, store)
}
