package realm

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
)

// TestTwinCommandIsOneTrace follows one gated command through the realm
// and its gateway: the HTTP request, the policy decision, the delivery of
// the grant over NATS and the gateway carrying it out are spans of one
// trace, the gateway's a child of the delivery through the trace context
// the grant's NATS message carries (the gateway's worker starts from a
// context of its own, so nothing but the header can join them).
func TestTwinCommandIsOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	r := startRealm(t, Config{Listen: "localhost:0", TracerProvider: tp})
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator")
	standIn(t, r, ada, "conveyor-line")
	exp.Reset()

	status, p, ans, _ := ada.Command(beltPath, "trace-1", map[string]any{"op": "set", "value": 1.5, "reason": "trace"})
	if status != 200 || ans.Status != command.StatusDone {
		t.Fatalf("belt command = %d %+v %+v, want done", status, p, ans)
	}
	var request, decide, deliver, execute *tracetest.SpanStub
	found := func() bool {
		spans := exp.GetSpans()
		request, decide, deliver, execute = nil, nil, nil, nil
		for i := range spans {
			s := &spans[i]
			switch {
			case s.Name == "POST /v1/twins/{twin}/actuators/{actuator}/commands" && s.SpanKind == trace.SpanKindServer:
				request = s
			case s.Name == "policy.decide" && decide == nil:
				decide = s
			case s.Name == "twin.deliver":
				deliver = s
			case s.Name == "gateway.execute":
				execute = s
			}
		}
		return request != nil && decide != nil && deliver != nil && execute != nil
	}
	for deadline := time.Now().Add(10 * time.Second); !found() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !found() {
		var names []string
		for _, s := range exp.GetSpans() {
			names = append(names, s.Name)
		}
		t.Fatalf("spans: %v", names)
	}
	id := request.SpanContext.TraceID()
	for _, s := range []*tracetest.SpanStub{decide, deliver, execute} {
		if s.SpanContext.TraceID() != id {
			t.Fatalf("span %s is in trace %s, the request in %s: the command is not one trace", s.Name, s.SpanContext.TraceID(), id)
		}
	}
	if execute.Parent.SpanID() != deliver.SpanContext.SpanID() || !execute.Parent.IsRemote() {
		t.Fatalf("gateway.execute's parent = %v, want the delivery %s, remote (from the NATS header)", execute.Parent, deliver.SpanContext.SpanID())
	}
	if deliver.Parent.SpanID() != request.SpanContext.SpanID() && !descends(exp.GetSpans(), deliver, request) {
		t.Fatalf("twin.deliver does not descend from the HTTP request's span")
	}
	attrs := map[string]string{}
	for _, kv := range execute.Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["zerorealm.twin"] != "conveyor-1" || attrs["zerorealm.actuator"] != "belt-speed" || attrs["zerorealm.result"] == "" {
		t.Fatalf("gateway.execute attributes = %v", attrs)
	}
}

// descends reports whether s has ancestor among spans.
func descends(spans tracetest.SpanStubs, s, ancestor *tracetest.SpanStub) bool {
	byID := map[trace.SpanID]*tracetest.SpanStub{}
	for i := range spans {
		byID[spans[i].SpanContext.SpanID()] = &spans[i]
	}
	for cur := s; cur != nil && cur.Parent.IsValid(); cur = byID[cur.Parent.SpanID()] {
		if cur.Parent.SpanID() == ancestor.SpanContext.SpanID() {
			return true
		}
	}
	return false
}
