package approvals

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Run keeps a part's refusal as the problem the edge would have answered.
func TestRunKeepsTheEdgesProblem(t *testing.T) {
	refused := &edge.Error{Status: http.StatusForbidden, Type: edge.TypeAgentForbidden, Detail: "over-limit: spent"}
	_, err := Run(func(context.Context, approval.Pending) (json.RawMessage, error) { return nil, refused })(context.Background(), approval.Pending{})
	p, ok := problem.As(err)
	if !ok || p.Status != http.StatusForbidden || p.Type != edge.TypeAgentForbidden || p.Detail != "over-limit: spent" {
		t.Fatalf("Run's error = %v (%+v), want the agent-forbidden problem", err, p)
	}
	out, err := Run(func(context.Context, approval.Pending) (json.RawMessage, error) {
		return json.RawMessage(`{"ok":true}`), nil
	})(context.Background(), approval.Pending{})
	if err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("Run of a success = %s, %v", out, err)
	}
}

// The live message carries the record as the owner sees it: never the
// agent's token or the part's payload.
func TestMessageShowsTheViewOnly(t *testing.T) {
	msg := Message(approval.Pending{ID: "pa_0123456789abcdef0123456789abcdef", Kind: "transfer", State: approval.StatePending,
		Token: "zrd1~secret", Payload: json.RawMessage(`{"intent":"secret"}`)}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil || m["type"] != MessageType || m["at"] != "2026-01-02T03:04:05Z" {
		t.Fatalf("message %s: %v", msg, err)
	}
	if strings.Contains(string(msg), "secret") {
		t.Fatalf("the message shows the token or the payload: %s", msg)
	}
}

// The reconciler's audit record of a settled action names what it came
// to, the node whose run stopped and the node that settled it; a failure
// is a deny with the problem's detail.
func TestSettledEventNamesBothNodes(t *testing.T) {
	p := approval.Pending{ID: "pa_0123456789abcdef0123456789abcdef", Agent: "ag_1", Chain: "av_1 > ag_1 (dg_1)", State: approval.StateDone, Node: "realm-b"}
	ev := settledEvent(approval.Settled{Pending: p, Runner: "realm-a"})
	if ev.Action != ActionSettle || ev.Actor != "ag_1" || ev.Outcome != audit.Allow || ev.Signals["runner"] != "realm-a" || ev.Signals["node"] != "realm-b" ||
		ev.Resource != `AgentAction::"pa_0123456789abcdef0123456789abcdef"` {
		t.Fatalf("settled done: %+v", ev)
	}
	p.State, p.Problem = approval.StateFailed, &approval.Problem{Status: 401, Detail: "revoked"}
	ev = settledEvent(approval.Settled{Pending: p, Runner: "realm-a"})
	if ev.Outcome != audit.Deny || ev.Reasons[len(ev.Reasons)-1] != "revoked" {
		t.Fatalf("settled failed: %+v", ev)
	}
}

// The reconciler returns when its context ends (the node stops).
func TestReconcileEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a := New(nil)
	a.Deps = &Deps{Settler: noneStale{}}
	done := make(chan struct{})
	go func() { a.Reconcile(ctx); close(done) }()
	cancel()
	<-done
}

type noneStale struct{}

func (noneStale) SettleStale(context.Context) ([]approval.Settled, error) { return nil, nil }
