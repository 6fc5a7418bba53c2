package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// realmLikeScrape is a /metrics page shaped like a busy realm's: the Go and
// process collectors plus labelled counters and a histogram, written by
// the same encoder the realm serves with.
func realmLikeScrape(b *testing.B) []byte {
	b.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	frames := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zerorealm_xr_frames_total", Help: "XR frames by outcome."}, []string{"outcome", "transport"})
	requests := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zerorealm_http_request_seconds", Help: "HTTP latency."}, []string{"route"})
	reg.MustRegister(frames, requests)
	for i := range 20 {
		frames.WithLabelValues(fmt.Sprintf("outcome %d", i), "websocket").Add(float64(i))
		requests.WithLabelValues(fmt.Sprintf("GET /route/%d", i)).Observe(float64(i) / 100)
	}
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			b.Fatal(err)
		}
	}
	return buf.Bytes()
}

// BenchmarkParseMetrics: the load tool reads a scrape every progress tick.
func BenchmarkParseMetrics(b *testing.B) {
	page := realmLikeScrape(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := parseMetrics(bytes.NewReader(page))
		if err != nil {
			b.Fatal(err)
		}
		if m.sum("zerorealm_xr_frames_total", "") == 0 {
			b.Fatal("no frames counted")
		}
	}
}
