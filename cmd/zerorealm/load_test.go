package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/clients/vr"
)

// A scrape of a realm's /metrics, trimmed.
const metricsSample = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 1.2345678e+08
go_memstats_heap_inuse_bytes 5.4e+07
zerorealm_xr_frames_total{outcome="accepted",transport="websocket"} 1000
zerorealm_xr_frames_total{outcome="accepted",transport="webrtc"} 500
zerorealm_xr_frames_total{outcome="head not tracked",transport="webrtc"} 7
zerorealm_http_requests_total{code="200",method="GET",route="GET /metrics"} 3 1700000000000
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(metricsSample))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, label string
		want        float64
	}{
		{"process_cpu_seconds_total", "", 12.5},
		{"process_resident_memory_bytes", "", 123456780},
		{"zerorealm_xr_frames_total", `outcome="accepted"`, 1500},
		{"zerorealm_xr_frames_total", "", 1507},
		{"zerorealm_xr_frames_total", `transport="webrtc"`, 507},
		{"zerorealm_xr_frames_total", `outcome="head not tracked"`, 7},
		{"zerorealm_http_requests_total", "", 3},
		{"absent_metric", "", 0},
	}
	for _, c := range cases {
		if got := m.sum(c.name, c.label); got != c.want {
			t.Errorf("sum(%q, %q) = %g, want %g", c.name, c.label, got, c.want)
		}
	}
	for _, bad := range []string{"name_only\n", "x{a=\"b\" 1\n", "x one\n", "x 1 2 3\n"} {
		if _, err := parseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMetrics(%q) = nil error, want one", bad)
		}
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 144000.4: "144,000", -1234567: "-1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%g) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadFlagsValidate(t *testing.T) {
	ok := loadFlags{url: "http://localhost:8080/", avatars: 10, hz: 72, duration: 30e9, transport: "ws", batch: 4, workers: 8, delaySample: 10}
	if err := ok.validate(); err != nil || ok.url != "http://localhost:8080" {
		t.Fatalf("validate(%+v) = %v, want nil and the URL without its slash", ok, err)
	}
	for name, mutate := range map[string]func(*loadFlags){
		"no avatars":     func(f *loadFlags) { f.avatars = 0 },
		"bad transport":  func(f *loadFlags) { f.transport = "carrier-pigeon" },
		"huge batch":     func(f *loadFlags) { f.batch = 33 },
		"zero hz":        func(f *loadFlags) { f.hz = 0 },
		"long scene":     func(f *loadFlags) { f.scene = strings.Repeat("s", 65) },
		"no sample":      func(f *loadFlags) { f.delaySample = 0 },
		"negative pid":   func(f *loadFlags) { f.realmPID = -1 },
		"negative procs": func(f *loadFlags) { f.gomaxprocs = -2 },
		"negative ramp":  func(f *loadFlags) { f.ramp = -time.Second },
		"ramp past the enrollment wait": func(f *loadFlags) {
			f.ramp, f.enrollTimeout = 3*time.Minute, 2*time.Minute
		},
	} {
		f := ok
		mutate(&f)
		if err := f.validate(); err == nil {
			t.Errorf("validate(%s) = nil, want a usage error", name)
		}
	}
}

// FuzzParseMetrics: a scrape from whatever answers at --url never panics
// the parser.
func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(metricsSample))
	f.Add([]byte("a{b=\"}\"} 1\n"))
	f.Add([]byte("# only a comment"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMetrics(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for series := range m {
			_ = m.sum(series, "")
		}
	})
}

// TestLoadWarnsOfTheCeremonyLimit: against a realm that limits passkey
// ceremonies per address (here a burst of 2, one sign-up), the load tool
// says once which flag lifts the limit, and still signs in by waiting it
// out. The realm also runs under --memory-limit, which it takes and gives
// back when it stops.
func TestLoadWarnsOfTheCeremonyLimit(t *testing.T) {
	for flag, want := range map[string]string{"ceremony-rate": strconv.FormatFloat(defaultCeremonyRate, 'g', -1, 64), "ceremony-burst": strconv.Itoa(defaultCeremonyBurst)} {
		if got := newServeCommand().Flags().Lookup(flag).DefValue; got != want {
			t.Fatalf("serve's --%s defaults to %s, the load tool's estimate assumes %s", flag, got, want)
		}
	}
	before := debug.SetMemoryLimit(-1)
	url, _, stop := startRealm(t, []string{"serve", "--listen", "127.0.0.1:0", "--nats-listen", "", "--data", t.TempDir(),
		"--log-level", "warn", "--ceremony-burst", "2", "--ceremony-rate", "1", "--memory-limit", "3GiB"})
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("the realm's memory limit is %d, want 3GiB", got)
	}
	var warn syncBuffer
	r := &loadRun{f: loadFlags{url: url, avatars: 2000}, warn: &warn, hc: &http.Client{Timeout: 10 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		if _, _, err := r.signUp(ctx, fmt.Sprintf("load-%d", i)); err != nil {
			t.Fatalf("sign-up %d: %v", i, err)
		}
	}
	stop()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit %d after the realm stopped, want %d back", got, before)
	}
	out := warn.String()
	if strings.Count(out, "warning") != 1 || !strings.Contains(out, "--ceremony-rate -1") || !strings.Contains(out, "2000 sign-ins take about 13m10s") {
		t.Fatalf("the load tool's warnings: %q; want one naming --ceremony-rate -1 and the time 2,000 sign-ins take", out)
	}
}

// TestNextFramesAreTheGenerators: the messages the load tool makes of an
// avatar's motion are, byte for byte, the synthetic person's frames from
// Next, numbered from the message's seq: the tool's own places for a
// frame and its gaze change nothing on the wire.
func TestNextFramesAreTheGenerators(t *testing.T) {
	dt := time.Second / 72
	for seed := range int64(6) {
		a := &loadAvatar{gen: synth.NewPerson(seed).Session(0)}
		a.gen.SetMaxStep(dt)
		ref := synth.NewPerson(seed).Session(0)
		ref.SetMaxStep(dt)
		frames := make([]vr.Frame, 8)
		for m := range 40 {
			seq := uint32(m * 8)
			got, err := vr.AppendMessage(nil, a.nextFrames(frames, dt, seq))
			if err != nil {
				t.Fatal(err)
			}
			want := make([]vr.Frame, len(frames))
			for i := range want {
				f := ref.Next(dt)
				pose := func(p biometrics.Pose) vr.Pose { return vr.Pose{Pos: p.Pos, Rot: p.Rot, Tracked: p.Tracked} }
				want[i] = vr.Frame{TimeUS: f.TimeUS, Seq: seq + uint32(i), Head: pose(f.Head), Left: pose(f.Left), Right: pose(f.Right), HeartRate: f.HeartRate}
				if f.Gaze != nil {
					want[i].Gaze = &vr.Gaze{Dir: f.Gaze.Dir, PupilMM: f.Gaze.PupilMM}
				}
			}
			wantMsg, _ := vr.AppendMessage(nil, want)
			if !bytes.Equal(got, wantMsg) {
				t.Fatalf("seed %d message %d: the load tool's bytes differ from the generator's frames", seed, m)
			}
		}
	}
}
