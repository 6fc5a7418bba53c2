// Package timings holds the realm's Prometheus histograms of how long its
// domain events take: passkey ceremonies, policy decisions, twin commands
// from the signed grant to the gateway's acknowledgement, and transfers
// from the signed intent to the receipt. (XR window scoring is measured
// beside its other metrics in realm/internal/live/xr.)
//
// The parts do not import this package: each declares the one function it
// calls (a Deps field), and the realm's wiring hands it the method here,
// so a part's tests run without a registry and the metric names live in
// one place.
package timings
