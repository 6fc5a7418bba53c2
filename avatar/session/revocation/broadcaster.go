package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
)

// ErrInvalidConfig reports a Config that New refuses.
var ErrInvalidConfig = errors.New("revocation: invalid config")

// nodeHeader names the sending node of a notice or an acknowledgement; the
// Authenticator's tag covers it.
const nodeHeader = clustermsg.NodeHeader

// Defaults of Config.
const (
	defaultAckWait   = time.Second
	defaultStoreWait = time.Second
	defaultRetryMin  = 100 * time.Millisecond
	defaultRetryMax  = 5 * time.Second
	// defaultRedriveAfter: the node that made a revocation stores it
	// within its StoreWait or retries every RetryMax at most; a told node
	// that finds it not stored a few seconds later stores it itself.
	defaultRedriveAfter = 5 * time.Second
	// attemptTimeout bounds one background store attempt.
	attemptTimeout = 5 * time.Second
)

// Sessions is what a Broadcaster needs of the session manager.
type Sessions interface {
	// Deny refuses the session on this node from now on.
	Deny(session.Revocation) error
	// DenyAvatar refuses every session of the avatar created up to the
	// revocation's time on this node from now on.
	DenyAvatar(session.AvatarRevocation) error
}

// Authenticator signs and checks messages between realm nodes.
type Authenticator interface {
	// Sign sets msg's authentication header for subject.
	Sign(msg *nats.Msg, subject string, now time.Time)
	// Verify checks msg's authentication header for subject at now.
	Verify(msg *nats.Msg, subject string, now time.Time) error
}

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

	// ctx ends background store attempts when the Broadcaster closes.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	pending int
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
	case cfg.AckWait < 0 || cfg.StoreWait < 0 || cfg.RetryMin < 0 || cfg.RetryMax < 0 || cfg.RedriveAfter < 0:
		return nil, fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = defaultAckWait
	}
	if cfg.StoreWait == 0 {
		cfg.StoreWait = defaultStoreWait
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = defaultRetryMin
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = defaultRetryMax
	}
	if cfg.RedriveAfter == 0 {
		cfg.RedriveAfter = defaultRedriveAfter
	}
	if cfg.RetryMax < cfg.RetryMin {
		return nil, fmt.Errorf("%w: RetryMax %v below RetryMin %v", ErrInvalidConfig, cfg.RetryMax, cfg.RetryMin)
	}
	if cfg.Peers == nil {
		cfg.Peers = func() []string { return nil }
	}
	if cfg.OnRefused == nil {
		cfg.OnRefused = func(string, error) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Broadcaster{cfg: cfg, subject: cfg.Prefix + ".sessions.revoked", log: cfg.Logger}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	sub, err := cfg.Conn.Subscribe(b.subject, b.receive)
	if err != nil {
		b.cancel()
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
	b.cancel()
	b.wg.Wait()
}

// Pending counts revocations whose store attempts are still running in
// the background.
func (b *Broadcaster) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
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
	out.Stored = b.storeOnce(ctx, store)
	if !out.Stored {
		b.storeLater(b.cfg.RetryMin, store)
	}
	return out
}

// tell publishes revs to the other nodes and counts acknowledgements from
// distinct nodes until every live one answered or the wait ran out. live
// is how many other nodes Peers listed.
func (b *Broadcaster) tell(ctx context.Context, revs []session.Revocation, avatars []session.AvatarRevocation) (told, live int) {
	peers := b.cfg.Peers()
	waiting := make(map[string]bool, len(peers))
	for _, p := range peers {
		if p != b.cfg.Node {
			waiting[p] = true
		}
	}
	live = len(waiting)
	data, err := encodeNotice(b.cfg.Node, revs, avatars)
	if err != nil {
		b.log.Error("revocation notice not sent", "err", err)
		return 0, live
	}
	inbox := b.cfg.Conn.NewRespInbox()
	acks := make(chan *nats.Msg, 16)
	sub, err := b.cfg.Conn.ChanSubscribe(inbox, acks)
	if err != nil {
		b.log.Warn("revocation notice not sent: subscribe to acknowledgements", "err", err)
		return 0, live
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := &nats.Msg{Subject: b.subject, Reply: inbox, Data: data, Header: nats.Header{nodeHeader: {b.cfg.Node}}}
	b.cfg.Auth.Sign(msg, b.subject, time.Now())
	if err := b.cfg.Conn.PublishMsg(msg); err != nil {
		b.log.Warn("revocation notice not sent", "err", err)
		return 0, live
	}
	if live == 0 {
		return 0, 0
	}
	wait := time.NewTimer(b.cfg.AckWait)
	defer wait.Stop()
	heard := map[string]bool{}
	for len(waiting) > 0 {
		select {
		case m := <-acks:
			node, err := b.verifyAck(m, inbox)
			if err != nil {
				b.cfg.OnRefused("ack", err)
				continue
			}
			if !heard[node] {
				heard[node] = true
				delete(waiting, node)
			}
		case <-wait.C:
			b.log.Warn("revocation: nodes did not acknowledge in time", "missing", len(waiting), "told", len(heard))
			return len(heard), live
		case <-ctx.Done():
			return len(heard), live
		}
	}
	return len(heard), live
}

func (b *Broadcaster) verifyAck(m *nats.Msg, inbox string) (string, error) {
	if err := b.cfg.Auth.Verify(m, inbox, time.Now()); err != nil {
		return "", err
	}
	a, err := decodeAck(m.Data)
	if err != nil {
		return "", err
	}
	if a.Node != m.Header.Get(nodeHeader) || a.Node == b.cfg.Node {
		return "", fmt.Errorf("%w: acknowledgement from %q under header %q", ErrMalformed, a.Node, m.Header.Get(nodeHeader))
	}
	return a.Node, nil
}

// receive denies another node's revocations here and acknowledges them.
func (b *Broadcaster) receive(m *nats.Msg) {
	if err := b.cfg.Auth.Verify(m, m.Subject, time.Now()); err != nil {
		b.cfg.OnRefused("notice", err)
		return
	}
	if m.Header.Get(nodeHeader) == b.cfg.Node {
		return // this node denied them before it published
	}
	n, err := decodeNotice(m.Data)
	if err == nil && n.Node != m.Header.Get(nodeHeader) {
		err = fmt.Errorf("%w: notice from %q under header %q", ErrMalformed, n.Node, m.Header.Get(nodeHeader))
	}
	if err != nil {
		b.cfg.OnRefused("notice", err)
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
	if m.Reply == "" {
		return
	}
	data, _ := json.Marshal(ack{Node: b.cfg.Node, Denied: len(denied) + len(deniedAvatars)})
	reply := &nats.Msg{Subject: m.Reply, Data: data, Header: nats.Header{nodeHeader: {b.cfg.Node}}}
	b.cfg.Auth.Sign(reply, m.Reply, time.Now())
	if err := b.cfg.Conn.PublishMsg(reply); err != nil {
		b.log.Warn("revocation acknowledgement not sent", "node", n.Node, "err", err)
	}
}

// storeOnce runs one store attempt within StoreWait and what is left of
// ctx's deadline (the answer waits for it), and not cancelled with ctx: a
// client that hangs up does not cut the attempt short. What it does not
// store, storeLater does.
func (b *Broadcaster) storeOnce(ctx context.Context, write func(context.Context) error) bool {
	detached := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		detached, cancel = context.WithDeadline(detached, d)
		defer cancel()
	}
	ctx, cancel := context.WithTimeout(detached, b.cfg.StoreWait)
	defer cancel()
	err := write(ctx)
	switch {
	case err == nil:
		return true
	case errors.Is(err, session.ErrInvalidSession):
		b.log.Info("revocation: no session record to store", "err", err)
		return true
	default:
		b.log.Warn("revocation not stored yet; retrying in the background", "err", err)
		return false
	}
}

// redriveLater stores revs, revocations another node made and this one
// acknowledged, with redrive (Config.Redrive, RedriveAfter from now, then
// as storeLater retries), unless redrive is nil.
func redriveLater[R any](b *Broadcaster, redrive func(context.Context, R) error, revs []R) {
	if redrive == nil || len(revs) == 0 {
		return
	}
	left := slices.Clone(revs) // the attempts' own: what is stored leaves it
	b.storeLater(b.cfg.RedriveAfter, func(ctx context.Context) error {
		for len(left) > 0 {
			if err := redrive(ctx, left[0]); err != nil && !errors.Is(err, session.ErrInvalidSession) {
				return err
			}
			left = left[1:]
		}
		return nil
	})
}

// storeLater retries store with back-off, the first time after first,
// until it succeeds or the Broadcaster closes.
func (b *Broadcaster) storeLater(first time.Duration, store func(context.Context) error) {
	b.mu.Lock()
	b.pending++
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() {
			b.mu.Lock()
			b.pending--
			b.mu.Unlock()
		}()
		delay := first
		for attempt := 2; ; attempt++ {
			t := time.NewTimer(delay)
			select {
			case <-b.ctx.Done():
				t.Stop()
				b.log.Warn("revocation store attempts end with the node: the other nodes deny the sessions until they expire", "attempts", attempt-1)
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(b.ctx, attemptTimeout)
			err := store(ctx)
			cancel()
			switch {
			case err == nil:
				b.log.Info("revocation stored", "attempts", attempt)
				return
			case errors.Is(err, session.ErrInvalidSession):
				return
			case b.ctx.Err() != nil:
				continue // reported at the top
			}
			b.log.Warn("revocation store attempt failed", "attempt", attempt, "err", err)
			delay = min(max(2*delay, b.cfg.RetryMin), b.cfg.RetryMax)
		}
	}()
}
