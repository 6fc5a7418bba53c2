package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
)

// realmScrape is a realm's /metrics as the load tool reads it.
func realmScrape(t *testing.T, streams, cpuSeconds, rss, goroutines float64) metricSet {
	t.Helper()
	var b strings.Builder
	for _, line := range []struct {
		name  string
		value float64
	}{
		{"zerorealm_xr_streams", streams},
		{"zerorealm_xr_stream_state_bytes", streams * 34 * 1024},
		{`zerorealm_xr_frames_total{transport="websocket",outcome="accepted"}`, cpuSeconds * 1000},
		{"zerorealm_xr_windows_scored_total", cpuSeconds * 10},
		{"process_cpu_seconds_total", cpuSeconds},
		{"process_resident_memory_bytes", rss},
		{"go_memstats_heap_inuse_bytes", rss / 2},
		{"go_goroutines", goroutines},
		{"go_memstats_stack_inuse_bytes", goroutines * 8 * 1024},
	} {
		b.WriteString(line.name)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(line.value, 'f', -1, 64))
		b.WriteByte('\n')
	}
	m, err := parseMetrics(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLoadReportPerRealmStreamWhenShared: a realm serving more streams
// than the tool has avatars is streamed to by another client as well, so
// the report says so and gives the realm's CPU and memory per realm
// stream; the per-avatar differences from before sign-in, which the other
// client's streams moved too (and once made goroutines per avatar
// negative), are left out.
func TestLoadReportPerRealmStreamWhenShared(t *testing.T) {
	var out bytes.Buffer
	r := &loadRun{f: loadFlags{avatars: 500}, out: &out}
	before := realmScrape(t, 0, 0, 70<<20, 100)
	idle := realmScrape(t, 2000, 10, 900<<20, 4300) // the other tool's 2,000 streams already ran
	first := realmScrape(t, 2500, 100, 1000<<20, 5000)
	last := realmScrape(t, 2500, 130, 1000<<20, 5000)
	r.report(30*time.Second, before, idle, first, last, vr.Stats{}, vr.Stats{}, 0, procSample{}, procSample{})
	got := out.String()
	for _, want := range []string{
		"shared realm   the realm serves 2500 XR streams, more than this tool's 500 avatars",
		"realm CPU      1.00 cores (0.400 ms of CPU per second per realm stream)",
		"realm memory   RSS 1000 MiB (410 KiB per realm stream)",
		"realm stacks   5000 goroutines (2.0 per realm stream)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for _, wrong := range []string{"per avatar", "%)", "RSS all in"} {
		if strings.Contains(got, wrong) {
			t.Errorf("a shared realm's report says %q, a figure the other client's streams also moved:\n%s", wrong, got)
		}
	}

	// Alone, the same realm's figures are per avatar of this tool.
	out.Reset()
	r.f.avatars = 2500
	r.report(30*time.Second, before, idle, first, last, vr.Stats{}, vr.Stats{}, 0, procSample{}, procSample{})
	if got := out.String(); strings.Contains(got, "shared realm") || !strings.Contains(got, "0.400 ms of CPU per second per avatar") {
		t.Errorf("a realm this tool alone streams to was reported as shared, or not per avatar:\n%s", got)
	}
}
