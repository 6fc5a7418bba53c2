package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// lineLog is a slog handler that keeps every record's message and
// attributes as one line, for tests that read what was logged.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, b.String())
	return nil
}
func (l *lineLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lineLog) WithGroup(string) slog.Handler      { return l }

func (l *lineLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestForgedTakeoverAndNoticeAreRefused: on real NATS, a takeover
// announcement or an avatar notice that no node signed (none at all, the
// wrong key, or one node's tag on another node's stamp) closes nothing and
// reaches nobody; each is counted and logged with its reason. The same
// messages signed by a node act.
func TestForgedTakeoverAndNoticeAreRefused(t *testing.T) {
	srv := natstest.RunServer(t)
	key := make([]byte, 32)
	key[0] = 1
	cluster, err := clustermsg.New(key)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lineLog{}
	var forged atomic.Int64
	nc := natstest.ConnectInProcess(t, srv)
	s := New(Deps{Log: slog.New(logs), Node: "a", Prefix: "zr", NC: nc, Cluster: cluster,
		Forged: func(string) { forged.Add(1) }})
	for _, start := range []func() (*nats.Subscription, error){s.subscribeTakeovers, s.subscribeNotices} {
		sub, err := start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	// The attacker publishes on a connection of its own: the server must
	// have the subscriptions before then, or a message reaches no one and
	// is never counted.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := &socket{session: "s1", closing: make(chan closeFrame, 1), now: time.Now,
		stamp: liveStamp{At: 1, Node: "a", Seq: 1}, p: edge.Principal{Avatar: &avatar.Avatar{ID: "ada"}}}
	s.sockets.add(c)

	attacker := natstest.ConnectInProcess(t, srv)
	otherKey := make([]byte, 32)
	otherKey[0] = 2
	wrong, err := clustermsg.New(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	newer, _ := json.Marshal(liveStamp{At: time.Now().UnixNano(), Node: "b", Seq: 1})
	notice, _ := json.Marshal(avatarNotice{Avatar: "ada", Message: json.RawMessage(`{"type":"forged"}`)})
	msg := func(subject, node string, data []byte, signer *clustermsg.Auth) *nats.Msg {
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		if node != "" {
			m.Header.Set(clustermsg.NodeHeader, node)
		}
		if signer != nil {
			signer.Sign(m, subject, time.Now())
		}
		return m
	}
	attempts := []*nats.Msg{
		msg("zr.live.session.s1", "b", newer, nil),       // no tag
		msg("zr.live.session.s1", "b", newer, wrong),     // not the cluster's key
		msg("zr.live.session.s1", "c", newer, cluster),   // node c's tag on node b's stamp
		msg("zr.live.avatar-notice", "b", notice, nil),   // no tag
		msg("zr.live.avatar-notice", "b", notice, wrong), // not the cluster's key
	}
	for _, m := range attempts {
		if err := attacker.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every forged message counted", func() bool { return forged.Load() == int64(len(attempts)) })
	if c.closed.Load() || c.send.len() != 0 {
		t.Fatalf("after forged messages: closed %v, %d messages pushed; want the socket untouched", c.closed.Load(), c.send.len())
	}
	refusals := 0
	for _, line := range logs.all() {
		if strings.Contains(line, "refused a cluster message") {
			refusals++
			if !strings.Contains(line, "reason="+clustermsg.ErrUnauthenticated.Error()) {
				t.Errorf("a refusal without its reason: %s", line)
			}
		}
	}
	if refusals != len(attempts) {
		t.Fatalf("%d refusals logged, want %d: %q", refusals, len(attempts), logs.all())
	}

	// What a node signs acts: the notice reaches the socket, the
	// announcement of a newer connection closes it.
	genuine := []byte(`{"type":"genuine"}`)
	b := New(Deps{Log: slog.New(logs), Node: "b", Prefix: "zr", NC: attacker, Cluster: cluster})
	b.noticeAvatar("ada", genuine)
	waitFor(t, "the signed notice pushed", func() bool { return c.send.len() == 1 })
	if got, _ := c.send.take(); string(got) != string(genuine) {
		t.Fatalf("pushed %s, want the signed notice %s", got, genuine)
	}
	if err := b.publishSigned("zr.live.session.s1", newer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the signed announcement closing the older socket", c.closed.Load)
	if f := <-c.closing; f.code != closeReplaced {
		t.Fatalf("closed with %d, want %d", f.code, closeReplaced)
	}
}

// waitFor polls cond until it holds, failing after a limit generous
// enough for a loaded machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
