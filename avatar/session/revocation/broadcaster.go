package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clustercast"
)

// ErrInvalidConfig reports a Config that New refuses.
var ErrInvalidConfig = errors.New("revocation: invalid config")

// nodeHeader names the sending node of a notice or an acknowledgement; the
// Authenticator's tag covers it.
const nodeHeader = clustercast.NodeHeader

// Sessions is what a Broadcaster needs of the session manager.
type Sessions interface {
	// Deny refuses the session on this node from now on.
	Deny(session.Revocation) error
	// DenyAvatar refuses every session of the avatar created up to the
	// revocation's time on this node from now on.
	DenyAvatar(session.AvatarRevocation) error
}

// Authenticator signs and checks messages between realm nodes.
type Authenticator = clustercast.Authenticator

// Config configures a Broadcaster. Zero durations are the documented
// defaults.
type Config struct {
	Conn     *nats.Conn
	Prefix   string // subject prefix of the realm; required
	Node     string // this node's name; required
	Auth     Authenticator
	Sessions Sessions
	// Peers lists the other realm nodes believed live now, by name;
	// Revoke waits for their acknowledgements. Nil means none.
	Peers func() []string
	// AckWait bounds the wait for acknowledgements. Default 1s.
	AckWait time.Duration
	// StoreWait bounds the first, synchronous attempt to store a
	// revocation; later attempts run in the background. Default 1s.
	StoreWait time.Duration
	// RetryMin and RetryMax bound the back-off between background store
	// attempts. Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// Redrive, when set, makes this node store the revocations other
	// nodes told it of, RedriveAfter after it acknowledged them, and
	// retry like the node that made them: the revocation is not lost if
	// that node stops before its store attempt succeeds. It must be
	// idempotent (a revocation stored already changes nothing) and wrap
	// session.ErrInvalidSession for a session with no record, which ends
	// the attempts.
	Redrive func(ctx context.Context, rev session.Revocation) error
	// RedriveAvatar is Redrive for "sign out everywhere".
	RedriveAvatar func(ctx context.Context, rev session.AvatarRevocation) error
	// RedriveAfter is how long after acknowledging a notice the node
	// re-drives its revocations. Default 5s.
	RedriveAfter time.Duration
	// OnRefused is told of every notice or acknowledgement dropped
	// because it does not verify or decode, with what it was ("notice" or
	// "ack"). Optional.
	OnRefused func(kind string, err error)
	Logger    *slog.Logger
}

// Broadcaster sends this node's revocations to the others and denies
// theirs here. It is safe for concurrent use.
type Broadcaster struct {
	cfg     Config
	subject string
	sub     *nats.Subscription
	log     *slog.Logger

	teller clustercast.Teller
	retry  *clustercast.Retrier
}

// Outcome is what Revoke achieved.
type Outcome struct {
	// NodesTold counts the nodes that deny the sessions now: this one and
	// every other that acknowledged.
	NodesTold int
	// NodesLive counts this node and the others Peers listed.
	NodesLive int
	// Stored reports whether the store holds the revocations already;
	// when false, a background attempt keeps trying.
	Stored bool
}

// New validates cfg and subscribes to the other nodes' notices.
func New(cfg Config) (*Broadcaster, error) {
	switch {
	case cfg.Conn == nil || cfg.Auth == nil || cfg.Sessions == nil:
		return nil, fmt.Errorf("%w: Conn, Auth and Sessions are required", ErrInvalidConfig)
	case cfg.Prefix == "" || cfg.Node == "":
		return nil, fmt.Errorf("%w: Prefix and Node are required", ErrInvalidConfig)
	}
	timing, err := clustercast.Timing{AckWait: cfg.AckWait, StoreWait: cfg.StoreWait, RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, RedriveAfter: cfg.RedriveAfter}.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	cfg.AckWait, cfg.StoreWait, cfg.RetryMin, cfg.RetryMax, cfg.RedriveAfter = timing.AckWait, timing.StoreWait, timing.RetryMin, timing.RetryMax, timing.RedriveAfter
	clustercast.Defaults(&cfg.Peers, &cfg.OnRefused, &cfg.Logger)
	b := &Broadcaster{cfg: cfg, subject: cfg.Prefix + ".sessions.revoked", log: cfg.Logger}
	b.teller = clustercast.Teller{Conn: cfg.Conn, Auth: cfg.Auth, Node: cfg.Node, Subject: b.subject, AckWait: cfg.AckWait, OnRefused: cfg.OnRefused, Log: cfg.Logger.With("revocation", "sessions")}
	b.retry = clustercast.NewRetrier(cfg.RetryMin, cfg.RetryMax, func(err error) bool { return errors.Is(err, session.ErrInvalidSession) }, b.teller.Log)
	sub, err := b.teller.Listen(b.receive)
	if err != nil {
		b.retry.Close()
		return nil, fmt.Errorf("revocation: subscribe to %s: %w", b.subject, err)
	}
	b.sub = sub
	return b, nil
}

// Close stops hearing notices and ends the background store attempts
// (their revocations stay denied on every node that was told, until the
// sessions expire). It waits for them to return.
func (b *Broadcaster) Close() {
	_ = b.sub.Unsubscribe()
	b.retry.Close()
}

// Pending counts revocations whose store attempts are still running in
// the background.
func (b *Broadcaster) Pending() int {
	return b.retry.Pending()
}

// Revoke makes revs take effect on every node it can reach, then stores
// them with store, which must be idempotent (it runs again until it
// succeeds; an error wrapping session.ErrInvalidSession means there is
// nothing to store, and ends the attempts). It returns once every live
// node acknowledged or the wait ran out, and the first store attempt
// returned. It fails, changing nothing, only if this node refuses one of
// revs (session.Manager.Deny's errors).
func (b *Broadcaster) Revoke(ctx context.Context, revs []session.Revocation, store func(context.Context) error) (Outcome, error) {
	for _, rev := range revs {
		if err := b.cfg.Sessions.Deny(rev); err != nil {
			return Outcome{}, fmt.Errorf("revocation: %w", err)
		}
	}
	out := Outcome{NodesTold: 1, NodesLive: 1}
	if len(revs) > 0 {
		told, live := b.tell(ctx, revs, nil)
		out.NodesTold += told
		out.NodesLive += live
	}
	return b.store(ctx, out, store), nil
}

// RevokeAvatar is Revoke for every session of rev.Avatar created up to
// rev.At ("sign out everywhere"): it needs no list of the avatar's
// sessions, so it takes effect on every node while the store cannot say
// which sessions the avatar holds. store must be idempotent, as Revoke's.
func (b *Broadcaster) RevokeAvatar(ctx context.Context, rev session.AvatarRevocation, store func(context.Context) error) (Outcome, error) {
	if rev.At.IsZero() {
		rev.At = time.Now()
	}
	if err := b.cfg.Sessions.DenyAvatar(rev); err != nil {
		return Outcome{}, fmt.Errorf("revocation: %w", err)
	}
	out := Outcome{NodesTold: 1, NodesLive: 1}
	told, live := b.tell(ctx, nil, []session.AvatarRevocation{rev})
	out.NodesTold += told
	out.NodesLive += live
	return b.store(ctx, out, store), nil
}

// store runs the first store attempt of a revocation out told of, and
// leaves the others to the background.
func (b *Broadcaster) store(ctx context.Context, out Outcome, store func(context.Context) error) Outcome {
	out.Stored = b.retry.Now(ctx, b.cfg.StoreWait, store)
	return out
}

// tell publishes revs to the other nodes and counts acknowledgements from
// distinct nodes until every live one answered or the wait ran out. live
// is how many other nodes Peers listed.
func (b *Broadcaster) tell(ctx context.Context, revs []session.Revocation, avatars []session.AvatarRevocation) (told, live int) {
	peers := b.cfg.Peers()
	data, err := encodeNotice(b.cfg.Node, revs, avatars)
	if err != nil {
		b.log.Error("revocation notice not sent", "err", err)
		return 0, len(slices.DeleteFunc(slices.Clone(peers), func(p string) bool { return p == b.cfg.Node }))
	}
	return b.teller.Tell(ctx, data, peers)
}

// receive denies another node's revocations here and acknowledges them.
func (b *Broadcaster) receive(m *nats.Msg) {
	from, own, err := b.teller.Heard(m)
	if err != nil || own {
		return // refused, or this node denied them before it published
	}
	n, err := decodeNotice(m.Data)
	if err == nil && n.Node != from {
		err = fmt.Errorf("%w: notice from %q under header %q", ErrMalformed, n.Node, from)
	}
	if err != nil {
		b.teller.Refuse(err)
		return
	}
	var denied []session.Revocation
	for _, rev := range n.revocations() {
		if err := b.cfg.Sessions.Deny(rev); err != nil {
			// Authenticated but refused (an expired session, say):
			// nothing to deny, and the others still count.
			b.log.Warn("revocation from another node not denied", "node", n.Node, "session", rev.SessionID, "err", err)
			continue
		}
		denied = append(denied, rev)
	}
	var deniedAvatars []session.AvatarRevocation
	for _, rev := range n.avatarRevocations() {
		if err := b.cfg.Sessions.DenyAvatar(rev); err != nil {
			b.log.Warn("sign-out everywhere from another node not denied", "node", n.Node, "avatar", rev.Avatar, "err", err)
			continue
		}
		deniedAvatars = append(deniedAvatars, rev)
	}
	redriveLater(b, b.cfg.Redrive, denied)
	redriveLater(b, b.cfg.RedriveAvatar, deniedAvatars)
	b.log.Info("sessions denied on another node's word", "node", n.Node, "denied", len(denied), "avatars", len(deniedAvatars))
	b.teller.Acknowledge(m, n.Node, len(denied)+len(deniedAvatars))
}

// redriveLater stores revs, revocations another node made and this one
// acknowledged, with redrive (Config.Redrive, RedriveAfter from now, then
// as storeLater retries), unless redrive is nil.
func redriveLater[R any](b *Broadcaster, redrive func(context.Context, R) error, revs []R) {
	if redrive == nil || len(revs) == 0 {
		return
	}
	left := slices.Clone(revs) // the attempts' own: what is stored leaves it
	b.retry.Later(b.cfg.RedriveAfter, func(ctx context.Context) error {
		for len(left) > 0 {
			if err := redrive(ctx, left[0]); err != nil && !errors.Is(err, session.ErrInvalidSession) {
				return err
			}
			left = left[1:]
		}
		return nil
	})
}
