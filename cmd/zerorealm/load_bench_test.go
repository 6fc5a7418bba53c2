package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/clients/vr"
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

// BenchmarkLoadFrames is the load tool's own work for each frame it sends,
// apart from the socket: a synthetic avatar's motion (one integration
// step a frame, as the tool moves its avatars) and its encoding, 8 frames
// a message at 72 Hz, over 16 people (some with gaze and heart rate).
func BenchmarkLoadFrames(b *testing.B) {
	const batch = 8
	dt := time.Second / 72
	avatars := make([]*loadAvatar, 16)
	for i := range avatars {
		avatars[i] = &loadAvatar{gen: synth.NewPerson(int64(i + 1)).Session(0)}
		avatars[i].gen.SetMaxStep(dt)
	}
	frames := make([]vr.Frame, batch)
	var msg []byte
	var seq uint32
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		a := avatars[seq/batch%uint32(len(avatars))]
		frames = a.nextFrames(frames, dt, seq)
		seq += batch
		var err error
		if msg, err = vr.AppendMessage(msg[:0], frames); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/frame")
	// The process's CPU, which other work on a shared machine does not
	// stretch as it does the wall time.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*batch), "cpu-ns/frame")
}
