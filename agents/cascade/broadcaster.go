package cascade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/clustercast"
)

// ErrInvalidConfig reports a Config that New refuses.
var ErrInvalidConfig = errors.New("cascade: invalid config")

// Revocations is what a Broadcaster needs of the node's revocation mirror
// (agents.Revocations).
type Revocations interface {
	// Make validates a revocation and stamps it with this node's time.
	Make(kind agents.RevocationKind, id, by, reason string) (agents.Revocation, error)
	// Deny makes a revocation this node makes take effect here now.
	Deny(agents.Revocation) error
	// Hear makes one another node made take effect here now.
	Hear(agents.Revocation) error
	// Store writes it to the store; idempotent.
	Store(context.Context, agents.Revocation) error
}

// Config configures a Broadcaster. Zero durations in Timing are its
// defaults.
type Config struct {
	Conn        *nats.Conn
	Prefix      string // subject prefix of the realm; required
	Node        string // this node's name; required
	Auth        clustercast.Authenticator
	Revocations Revocations
	// Peers lists the other realm nodes believed live now, by name; a
	// revocation waits for their acknowledgements. Nil means none.
	Peers func() []string
	clustercast.Timing
	// OnRefused is told of every notice or acknowledgement dropped
	// because it does not verify or decode ("notice" or "ack"). Optional.
	OnRefused func(kind string, err error)
	Logger    *slog.Logger
}

// Outcome is what a revocation achieved.
type Outcome struct {
	// NodesTold counts the nodes that refuse the revoked delegations now:
	// this one and every other that acknowledged.
	NodesTold int `json:"nodes_told"`
	// NodesLive counts this node and the others Peers listed.
	NodesLive int `json:"nodes_live"`
	// Stored reports whether the store holds the revocation already;
	// when false, background attempts keep trying.
	Stored bool `json:"stored"`
}

// Broadcaster sends this node's agent revocations to the others and
// denies theirs here. It is safe for concurrent use.
type Broadcaster struct {
	cfg    Config
	sub    *nats.Subscription
	teller clustercast.Teller
	retry  *clustercast.Retrier
}

// Subject is where nodes tell each other of agent revocations.
func Subject(prefix string) string { return prefix + ".agents.revoked" }

// New validates cfg and subscribes to the other nodes' notices.
func New(cfg Config) (*Broadcaster, error) {
	switch {
	case cfg.Conn == nil || cfg.Auth == nil || cfg.Revocations == nil:
		return nil, fmt.Errorf("%w: Conn, Auth and Revocations are required", ErrInvalidConfig)
	case cfg.Prefix == "" || cfg.Node == "":
		return nil, fmt.Errorf("%w: Prefix and Node are required", ErrInvalidConfig)
	}
	timing, err := cfg.Timing.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	cfg.Timing = timing
	clustercast.Defaults(&cfg.Peers, &cfg.OnRefused, &cfg.Logger)
	log := cfg.Logger.With("revocation", "agents")
	b := &Broadcaster{cfg: cfg,
		teller: clustercast.Teller{Conn: cfg.Conn, Auth: cfg.Auth, Node: cfg.Node, Subject: Subject(cfg.Prefix), AckWait: cfg.AckWait, OnRefused: cfg.OnRefused, Log: log},
		// A revocation that does not validate has nothing to store.
		retry: clustercast.NewRetrier(cfg.RetryMin, cfg.RetryMax, func(err error) bool { return errors.Is(err, agents.ErrMalformed) }, log),
	}
	b.sub, err = b.teller.Listen(b.receive)
	if err != nil {
		b.retry.Close()
		return nil, fmt.Errorf("cascade: subscribe to %s: %w", b.teller.Subject, err)
	}
	return b, nil
}

// Close stops hearing notices and ends the background store attempts
// (their revocations stay denied on every node told, until the node
// restarts; a delegation lives 24 h at most). It waits for them to return.
func (b *Broadcaster) Close() {
	_ = b.sub.Unsubscribe()
	b.retry.Close()
}

// Pending counts revocations whose store attempts still run in the
// background.
func (b *Broadcaster) Pending() int { return b.retry.Pending() }

// Revoke revokes delegation id, and everything derived from it, on every
// node it can reach and their gateways, then stores it. by and reason are
// kept for the audit. It fails, changing nothing, only for an id that is
// not a delegation's (agents.ErrMalformed).
func (b *Broadcaster) Revoke(ctx context.Context, id, by, reason string) (Outcome, error) {
	return b.revoke(ctx, agents.KindDelegation, id, by, reason)
}

// RevokeOwner revokes every delegation owner issued up to now, as Revoke:
// what "sign out everywhere", or the owner's trust becoming suspended,
// does to the owner's agents.
func (b *Broadcaster) RevokeOwner(ctx context.Context, owner, by, reason string) (Outcome, error) {
	return b.revoke(ctx, agents.KindOwner, owner, by, reason)
}

func (b *Broadcaster) revoke(ctx context.Context, kind agents.RevocationKind, id, by, reason string) (Outcome, error) {
	rev, err := b.cfg.Revocations.Make(kind, id, by, reason)
	if err != nil {
		return Outcome{}, err
	}
	if err := b.cfg.Revocations.Deny(rev); err != nil {
		return Outcome{}, err
	}
	// The store is written while the nodes are told: the answer waits
	// for the slower of the two, not for both in turn. The nodes are told
	// whatever the store does.
	stored := make(chan bool, 1)
	go func() {
		stored <- b.retry.Now(ctx, b.cfg.StoreWait, func(ctx context.Context) error { return b.cfg.Revocations.Store(ctx, rev) })
	}()
	out := Outcome{NodesTold: 1, NodesLive: 1}
	peers := b.cfg.Peers()
	data, err := encodeNotice(b.cfg.Node, rev)
	if err != nil {
		b.teller.Log.Error("revocation notice not sent", "err", err)
		out.NodesLive += len(slices.DeleteFunc(slices.Clone(peers), func(p string) bool { return p == b.cfg.Node }))
	} else {
		told, live := b.teller.Tell(ctx, data, peers)
		out.NodesTold += told
		out.NodesLive += live
	}
	out.Stored = <-stored
	return out, nil
}

// receive denies another node's revocation here and acknowledges it.
func (b *Broadcaster) receive(m *nats.Msg) {
	from, own, err := b.teller.Heard(m)
	if err != nil || own {
		return // refused, or this node denied it before it published
	}
	n, rev, err := decodeNotice(m.Data)
	if err == nil && n.Node != from {
		err = fmt.Errorf("%w: notice from %q under header %q", ErrMalformed, n.Node, from)
	}
	if err != nil {
		b.teller.Refuse(err)
		return
	}
	if err := b.cfg.Revocations.Hear(rev); err != nil {
		b.teller.Refuse(err)
		return
	}
	b.teller.Log.Info("agents revoked on another node's word", "node", from, "kind", rev.Kind, "id", rev.ID)
	// Should its maker stop before storing it, this node stores it.
	b.retry.Later(b.cfg.RedriveAfter, func(ctx context.Context) error { return b.cfg.Revocations.Store(ctx, rev) })
	b.teller.Acknowledge(m, from, 1)
}
