package clustercast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// ErrMalformed reports an acknowledgement or a notice's envelope that does
// not decode or names the wrong node.
var ErrMalformed = errors.New("clustercast: malformed message")

// NodeHeader names the sending node of a notice or an acknowledgement; the
// Authenticator's tag covers it.
const NodeHeader = clustermsg.NodeHeader

// maxAckBytes bounds an acknowledgement before it is decoded.
const maxAckBytes = 1 << 10

// Authenticator signs and checks messages between realm nodes.
type Authenticator interface {
	// Sign sets msg's authentication header for subject.
	Sign(msg *nats.Msg, subject string, now time.Time)
	// Verify checks msg's authentication header for subject at now.
	Verify(msg *nats.Msg, subject string, now time.Time) error
}

// Ack is a node's answer to a notice: it took effect there.
type Ack struct {
	Node   string `json:"node"`
	Denied int    `json:"denied"`
}

// DecodeAck parses an acknowledgement: exactly one JSON object, no member
// twice, none unknown, a node named.
func DecodeAck(data []byte) (Ack, error) {
	if len(data) > maxAckBytes {
		return Ack{}, fmt.Errorf("%w: acknowledgement of %d bytes", ErrMalformed, len(data))
	}
	var a Ack
	if err := DecodeStrict(data, &a); err != nil || a.Node == "" {
		return Ack{}, fmt.Errorf("%w: acknowledgement: %v", ErrMalformed, err)
	}
	return a, nil
}

// DecodeStrict decodes exactly one JSON value, with valid UTF-8, no member
// twice and no unknown member.
func DecodeStrict(data []byte, v any) error {
	if err := strictjson.Check(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Teller publishes this node's notices on one subject and acknowledges the
// other nodes'. The zero value is not usable; all fields are required
// except OnRefused.
type Teller struct {
	Conn    *nats.Conn
	Auth    Authenticator
	Node    string // this node's name
	Subject string
	// AckWait bounds the wait for acknowledgements.
	AckWait time.Duration
	// OnRefused is told of every acknowledgement or notice that does not
	// verify or decode, with what it was ("ack" or "notice").
	OnRefused func(kind string, err error)
	Log       *slog.Logger
}

// Listen subscribes handle to the Teller's subject, and waits (at most a
// second) until the server has the subscription: a node that has just
// started is then told of every notice sent after Listen returns, where
// an asynchronous subscribe could miss the first ones and leave the
// sender counting a live node that never heard. A connection that cannot
// flush now subscribes when it reconnects.
func (t Teller) Listen(handle nats.MsgHandler) (*nats.Subscription, error) {
	sub, err := t.Conn.Subscribe(t.Subject, handle)
	if err != nil {
		return nil, err
	}
	_ = t.Conn.FlushTimeout(time.Second)
	return sub, nil
}

// Tell publishes data, signed, on the subject and counts acknowledgements
// from distinct nodes of peers (this node's name is left out) until every
// one answered, the AckWait ran out or ctx ended. live is how many other
// nodes peers named. A notice that could not be sent is told to no one.
func (t Teller) Tell(ctx context.Context, data []byte, peers []string) (told, live int) {
	waiting := make(map[string]bool, len(peers))
	for _, p := range peers {
		if p != t.Node {
			waiting[p] = true
		}
	}
	live = len(waiting)
	inbox := t.Conn.NewRespInbox()
	acks := make(chan *nats.Msg, 16)
	sub, err := t.Conn.ChanSubscribe(inbox, acks)
	if err != nil {
		t.Log.Warn("notice not sent: subscribe to acknowledgements", "subject", t.Subject, "err", err)
		return 0, live
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := &nats.Msg{Subject: t.Subject, Reply: inbox, Data: data, Header: nats.Header{NodeHeader: {t.Node}}}
	t.Auth.Sign(msg, t.Subject, time.Now())
	if err := t.Conn.PublishMsg(msg); err != nil {
		t.Log.Warn("notice not sent", "subject", t.Subject, "err", err)
		return 0, live
	}
	if live == 0 {
		return 0, 0
	}
	wait := time.NewTimer(t.AckWait)
	defer wait.Stop()
	heard := map[string]bool{}
	for len(waiting) > 0 {
		select {
		case m := <-acks:
			node, err := t.verifyAck(m, inbox)
			if err != nil {
				t.OnRefused("ack", err)
				continue
			}
			if !heard[node] {
				heard[node] = true
				delete(waiting, node)
			}
		case <-wait.C:
			t.Log.Warn("nodes did not acknowledge a notice in time", "subject", t.Subject, "missing", len(waiting), "told", len(heard))
			return len(heard), live
		case <-ctx.Done():
			return len(heard), live
		}
	}
	return len(heard), live
}

func (t Teller) verifyAck(m *nats.Msg, inbox string) (string, error) {
	if err := t.Auth.Verify(m, inbox, time.Now()); err != nil {
		return "", err
	}
	a, err := DecodeAck(m.Data)
	if err != nil {
		return "", err
	}
	if a.Node != m.Header.Get(NodeHeader) || a.Node == t.Node {
		return "", fmt.Errorf("%w: acknowledgement from %q under header %q", ErrMalformed, a.Node, m.Header.Get(NodeHeader))
	}
	return a.Node, nil
}

// Heard checks another node's notice m: its tag, and that it is not this
// node's own. It returns the sending node; own is true for this node's
// own notice, which it acted on before publishing. A notice that does not
// verify is reported to OnRefused and returns an error.
func (t Teller) Heard(m *nats.Msg) (node string, own bool, err error) {
	if err := t.Auth.Verify(m, m.Subject, time.Now()); err != nil {
		t.OnRefused("notice", err)
		return "", false, err
	}
	node = m.Header.Get(NodeHeader)
	return node, node == t.Node, nil
}

// Refuse reports a notice whose tag verified but whose content does not
// decode.
func (t Teller) Refuse(err error) { t.OnRefused("notice", err) }

// Acknowledge answers notice m from node: it took effect here on denied
// items. A notice without a reply subject wants no answer.
func (t Teller) Acknowledge(m *nats.Msg, from string, denied int) {
	if m.Reply == "" {
		return
	}
	data, _ := json.Marshal(Ack{Node: t.Node, Denied: denied})
	reply := &nats.Msg{Subject: m.Reply, Data: data, Header: nats.Header{NodeHeader: {t.Node}}}
	t.Auth.Sign(reply, m.Reply, time.Now())
	if err := t.Conn.PublishMsg(reply); err != nil {
		t.Log.Warn("acknowledgement not sent", "subject", t.Subject, "node", from, "err", err)
	}
}

// Defaults fills in a broadcaster's optional parts left nil: no other
// nodes, no report of what is refused, a logger that discards.
func Defaults(peers *func() []string, onRefused *func(kind string, err error), log **slog.Logger) {
	if *peers == nil {
		*peers = func() []string { return nil }
	}
	if *onRefused == nil {
		*onRefused = func(string, error) {}
	}
	if *log == nil {
		*log = slog.New(slog.DiscardHandler)
	}
}
