// Package tracing is the project's OpenTelemetry plumbing: the tracer
// provider that exports spans over OTLP/HTTP when an endpoint is
// configured (and is a no-op otherwise), and the W3C trace context carried
// in NATS message headers, so that one twin command, from the HTTP request
// through the policy decision to the gateway that carries it out, is one
// trace.
//
// Tracing is off by default and costs nothing then: the no-op tracer
// records nothing, and NATS messages carry no header unless a span is
// being recorded.
package tracing
