package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName names the project's instrumentation scope.
const ScopeName = "github.com/zerorealm/zerorealm"

// Tracer is the project's tracer from tp; a nil tp gives the no-op one.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(ScopeName)
	}
	return tp.Tracer(ScopeName)
}

// Provider is a tracer provider exporting to an OTLP/HTTP collector at
// endpoint (for example http://localhost:4318), naming the service and
// the node. Shutdown flushes the spans still queued.
func Provider(ctx context.Context, endpoint, service, node string) (*sdktrace.TracerProvider, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: endpoint %q: want an http or https URL of an OTLP/HTTP collector, e.g. http://localhost:4318", endpoint)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/") + "/v1/traces")}
	if u.Path != "" && u.Path != "/" {
		// A URL with a path names the traces endpoint itself.
		opts = []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res := sdkresource.NewSchemaless(attribute.String("service.name", service), attribute.String("service.instance.id", node))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// Child starts a span named name under ctx's span, with that span's own
// provider, when ctx carries one that records: code deep in a call (a
// policy decision) joins the request's trace without being handed a
// tracer. It returns a nil span, and does nothing, otherwise; the caller
// ends a non-nil span.
func Child(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(ScopeName).Start(ctx, name)
}

// propagator is W3C Trace Context: traceparent and tracestate.
var propagator = propagation.TraceContext{}

// Inject puts ctx's span context into h, creating h when needed. It adds
// nothing when no span is being recorded, so a message costs no header
// when tracing is off.
func Inject(ctx context.Context, h nats.Header) nats.Header {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return h
	}
	if h == nil {
		h = nats.Header{}
	}
	propagator.Inject(ctx, natsCarrier(h))
	return h
}

// natsCarrier keeps W3C's lower-case names ("traceparent"): NATS header
// names are case-sensitive, and other NATS clients' tracing writes and
// reads them as the W3C spells them. Reads also accept the canonical
// form an http.Header would have written.
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return http.Header(c).Get(key)
}

func (c natsCarrier) Set(key, value string) { c[key] = []string{value} }

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Extract is ctx with the remote span context a message's header carries.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, natsCarrier(h))
}

// ExtractHTTP is ctx with the remote span context of an HTTP request's
// traceparent, when the caller sent one.
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	if h.Get("traceparent") == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}
