package realm

import (
	"context"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/avatar/session/revocation"
)

// Revocations take effect on every node before the store has them (see
// package revocation): this node denies the sessions, tells the other live
// nodes over core NATS (authenticated like presence) and waits for their
// acknowledgements, then stores the revocation, retrying in the background
// while the sessions bucket cannot be written. Sign-out answers with how
// many nodes were told and whether the store has it.

// startRevocationBroadcast hears the other nodes' revocations until bg ends.
func (r *Realm) startRevocationBroadcast(bg context.Context) error {
	b, err := revocation.New(revocation.Config{
		Conn: r.nc, Prefix: r.cfg.Prefix, Node: r.cfg.Node,
		Auth: r.clusterAuth, Sessions: r.sessions,
		Peers: r.livePeers,
		OnRefused: func(kind string, err error) {
			r.tampers.forged.WithLabelValues("revocation " + kind).Inc()
			r.log.Warn("dropped a revocation message that does not verify", "kind", kind, "err", err)
		},
		Logger: r.log,
	})
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.revoker = b
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		<-bg.Done()
		b.Close()
	}()
	return nil
}

// livePeers names the other nodes believed live: those the node registry
// lists and those whose presence heartbeats (core NATS, so heard while
// JetStream elects leaders) arrived lately.
func (r *Realm) livePeers() []string {
	seen := map[string]bool{r.cfg.Node: true}
	var out []string
	add := func(node string) {
		if !seen[node] {
			seen[node] = true
			out = append(out, node)
		}
	}
	if r.nodes != nil {
		for _, n := range r.nodes.live() {
			add(n.Node)
		}
	}
	if r.presence != nil {
		r.presence.mu.Lock()
		for node, p := range r.presence.peers {
			if time.Since(p.lastSeen) < presencePeerExpiry {
				add(node)
			}
		}
		r.presence.mu.Unlock()
	}
	return out
}

// revokeEverywhere denies revs on every node and stores them with store.
func (r *Realm) revokeEverywhere(ctx context.Context, revs []session.Revocation, store func(context.Context) error) (revocation.Outcome, error) {
	return r.revoker.Revoke(ctx, revs, store)
}

// revokeOne is revokeEverywhere for one session.
func (r *Realm) revokeOne(ctx context.Context, s session.Session, reason string) (revocation.Outcome, error) {
	rev := session.Revocation{SessionID: s.ID, Avatar: s.Avatar, Reason: reason, At: time.Now(), Expires: s.Expires}
	return r.revokeEverywhere(ctx, []session.Revocation{rev}, func(ctx context.Context) error {
		return r.sessions.Revoke(ctx, s.ID, reason)
	})
}

// revokeAvatar is revokeEverywhere for every session of an avatar. It
// returns how many sessions were denied.
func (r *Realm) revokeAvatar(ctx context.Context, avatarID, reason string) (int, revocation.Outcome, error) {
	revs, err := r.sessions.AvatarRevocations(ctx, avatarID, reason)
	if err != nil {
		return 0, revocation.Outcome{}, err
	}
	out, err := r.revokeEverywhere(ctx, revs, func(ctx context.Context) error {
		_, err := r.sessions.RevokeAvatar(ctx, avatarID, reason)
		return err
	})
	return len(revs), out, err
}

// revokedView is the answer of a sign-out.
func revokedView(n int, out revocation.Outcome) map[string]any {
	return map[string]any{"revoked": n, "nodes_told": out.NodesTold, "nodes_live": out.NodesLive, "stored": out.Stored}
}
