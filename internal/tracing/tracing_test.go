package tracing

import (
	"context"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestContextCrossesANATSHeader(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	if h := Inject(context.Background(), nil); h != nil {
		t.Fatalf("a context without a span put %v in the header", h)
	}
	ctx, span := Tracer(tp).Start(context.Background(), "send")
	h := Inject(ctx, nil)
	if h.Get("traceparent") == "" {
		t.Fatalf("header %v carries no traceparent", h)
	}
	remote := trace.SpanContextFromContext(Extract(context.Background(), h))
	if !remote.IsRemote() || remote.TraceID() != span.SpanContext().TraceID() || remote.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("extracted %v, want the sender's span %v, remote", remote, span.SpanContext())
	}
	child, cs := Child(ctx, "step")
	if cs == nil || trace.SpanContextFromContext(child).TraceID() != span.SpanContext().TraceID() {
		t.Fatal("Child did not join the caller's trace")
	}
	cs.End()
	span.End()
	if _, none := Child(context.Background(), "step"); none != nil {
		t.Fatal("Child started a span without a recording parent")
	}
	if got := len(exp.GetSpans()); got != 2 {
		t.Fatalf("%d spans exported, want 2", got)
	}
	hh := http.Header{}
	hh.Set("traceparent", h.Get("traceparent"))
	if trace.SpanContextFromContext(ExtractHTTP(context.Background(), hh)).TraceID() != span.SpanContext().TraceID() {
		t.Fatal("ExtractHTTP lost the trace")
	}
}

func TestProviderRefusesWhatIsNotACollectorURL(t *testing.T) {
	for _, bad := range []string{"", "localhost:4318", "ftp://x", "http://"} {
		if _, err := Provider(context.Background(), bad, "s", "n"); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
	tp, err := Provider(context.Background(), "http://localhost:4318", "zerorealm", "node-a")
	if err != nil {
		t.Fatal(err)
	}
	_ = tp.Shutdown(context.Background())
}
