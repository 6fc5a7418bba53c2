package twin

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/zerorealm/zerorealm/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// MaxGrantLifetime is the longest a grant may be valid. Gateways refuse
// longer ones whatever their signature.
const MaxGrantLifetime = 10 * time.Second

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	// Conn sends grants. Required.
	Conn *nats.Conn
	// Prefix is the realm's subject prefix; default "zr".
	Prefix string
	// Signer is the realm's grant key. Required.
	Signer *Signer
	// GatewayKey returns the address whose signature a twin's
	// acknowledgements must carry. Required: an acknowledgement from any
	// other key is treated as no answer.
	GatewayKey func(twinID string) (common.Address, bool)
	// Lifetime is how long a grant is valid; default 3s, at most
	// MaxGrantLifetime.
	Lifetime time.Duration
	// Timeout bounds a delivery when ctx has no deadline; default 2s.
	Timeout time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Tracer, when set, records each delivery as a client span and
	// carries its trace context to the gateway in the message header.
	Tracer trace.Tracer
}

// wireBuffers hold grants being sent: each is copied by the connection,
// so its buffer can serve the next one.
var wireBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// Dispatcher signs grants and delivers them to gateways.
type Dispatcher struct{ cfg DispatcherConfig }

// NewDispatcher validates cfg.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Conn == nil || cfg.Signer == nil || cfg.GatewayKey == nil {
		return nil, errors.New("twin: dispatcher needs a connection, a signer and gateway keys")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "zr"
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 3 * time.Second
	}
	if cfg.Lifetime > MaxGrantLifetime {
		return nil, fmt.Errorf("twin: grant lifetime %s is longer than %s", cfg.Lifetime, MaxGrantLifetime)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dispatcher{cfg: cfg}, nil
}

// Address is the realm key that signs the grants.
func (d *Dispatcher) Address() common.Address { return d.cfg.Signer.Address() }

// Grant signs the grant for an allowed command, valid from now for the
// configured lifetime.
func (d *Dispatcher) Grant(c Command, session string, approvers []string) SignedGrant {
	return d.GrantFor(c, c.Hash(), session, approvers)
}

// GrantFor is Grant for a caller that has computed the command's hash
// already; hash must be c.Hash().
func (d *Dispatcher) GrantFor(c Command, hash common.Hash, session string, approvers []string) SignedGrant {
	return d.sign(c, hash, session, approvers, "", nil)
}

// AgentGrantFor is GrantFor for an agent's command: c.Operator is the
// agent, owner the avatar it acts for, delegations its chain's ids, root
// first. The gateway refuses the grant when any of them is revoked.
func (d *Dispatcher) AgentGrantFor(c Command, hash common.Hash, owner string, delegations []string) SignedGrant {
	return d.sign(c, hash, "", nil, owner, delegations)
}

func (d *Dispatcher) sign(c Command, hash common.Hash, session string, approvers []string, owner string, delegations []string) SignedGrant {
	var nb [8]byte
	_, _ = rand.Read(nb[:])
	now := d.cfg.Now()
	if approvers == nil {
		approvers = []string{}
	}
	if delegations == nil {
		delegations = []string{}
	}
	return d.cfg.Signer.SignGrant(Grant{
		Twin: c.Twin, Actuator: c.Actuator, Op: c.Op, ValueMicro: c.ValueMicro, Command: hash,
		Nonce: binary.BigEndian.Uint64(nb[:]), NotBefore: Millis(now), Expiry: Millis(now.Add(d.cfg.Lifetime)),
		Operator: c.Operator, Session: session, Approvers: approvers, Owner: owner, Delegations: delegations,
	})
}

// Deliver sends a grant to its twin's gateway and verifies the signed
// acknowledgement. A gateway's refusal comes back as a *Refusal wrapping
// ErrGatewayRefused together with the acknowledgement that says so.
func (d *Dispatcher) Deliver(ctx context.Context, sg SignedGrant) (SignedAck, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.Timeout)
		defer cancel()
	}
	g := &sg.Grant
	var span trace.Span
	if d.cfg.Tracer != nil {
		ctx, span = d.cfg.Tracer.Start(ctx, "twin.deliver", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("zerorealm.twin", g.Twin), attribute.String("zerorealm.actuator", g.Actuator)))
		defer span.End()
	}
	buf := wireBuffers.Get().(*[]byte)
	*buf = sg.AppendEncode((*buf)[:0])
	// The connection copies what it sends, so the buffer is free again
	// once the request is out, whatever came back.
	subject := CommandSubject(d.cfg.Prefix, g.Twin, g.Actuator)
	var msg *nats.Msg
	var err error
	if h := tracing.Inject(ctx, nil); h != nil {
		msg, err = d.cfg.Conn.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: *buf, Header: h})
	} else {
		msg, err = d.cfg.Conn.RequestWithContext(ctx, subject, *buf)
	}
	wireBuffers.Put(buf)
	if span != nil && err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return SignedAck{}, refuse(ReasonNoGateway, "no gateway is connected for twin %s", g.Twin)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return SignedAck{}, refuse(ReasonNoGateway, "the gateway of twin %s did not answer in time", g.Twin)
	case err != nil:
		return SignedAck{}, fmt.Errorf("twin: deliver grant: %w", err)
	}
	sa, err := DecodeSignedAck(msg.Data)
	if err != nil {
		return SignedAck{}, refuse(ReasonBadAck, "the gateway's answer is not an acknowledgement: %v", err)
	}
	want, ok := d.cfg.GatewayKey(g.Twin)
	if !ok {
		return SignedAck{}, refuse(ReasonBadAck, "no gateway key is registered for twin %s", g.Twin)
	}
	signer, err := sa.Signer()
	if err != nil || signer != want {
		return SignedAck{}, refuse(ReasonBadAck, "the acknowledgement is not signed by twin %s's gateway key", g.Twin)
	}
	a := &sa.Ack
	// A command the gateway carried out before (under an earlier grant,
	// whose answer a node lost) is answered with that grant's
	// acknowledgement, its nonce and all: the command's hash is what ties
	// it to this request. Refusals always answer this very grant.
	sameGrant := a.Nonce == g.Nonce || a.Result == ResultDone || a.Result == ResultFailed
	if a.Twin != g.Twin || a.Actuator != g.Actuator || !sameGrant || a.Command != g.Command {
		return SignedAck{}, refuse(ReasonBadAck, "the acknowledgement answers another grant")
	}
	switch a.Result {
	case ResultDone:
		return sa, nil
	case ResultRefused:
		return sa, &Refusal{Reason: a.Reason, Detail: "gateway: " + a.Detail}
	case ResultFailed:
		return sa, &Refusal{Reason: ReasonDriverFailed, Detail: "gateway: " + a.Detail}
	}
	return sa, refuse(ReasonBadAck, "the acknowledgement has an unknown result %q", a.Result)
}
