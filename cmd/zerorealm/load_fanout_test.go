package main

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
)

func head(x, y, z float32) vr.Pose {
	return vr.Pose{Pos: [3]float32{x, y, z}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true}
}

// nthHead is the head of an avatar's i-th message in TestHeadSentAt.
func nthHead(i int) vr.Pose { return head(float32(i)*0.01, 1.6, -0.5) }

func TestHeadSentAt(t *testing.T) {
	var a loadAvatar
	for i := range headHistory + 10 {
		a.recordHead(nthHead(i), int64(1000+i))
	}
	a.recordHead(vr.Pose{Pos: [3]float32{9, 9, 9}}, 5000) // untracked: not the pose
	cases := []struct {
		name   string
		pose   vr.Pose
		want   int64
		wantOK bool
	}{
		{"newest", nthHead(headHistory + 9), int64(1000 + headHistory + 9), true},
		{"oldest kept", nthHead(10), 1010, true},
		{"overwritten", nthHead(9), 0, false},
		{"never sent", head(0.5, 1.7, -0.5), 0, false},
		{"untracked head", head(9, 9, 9), 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := a.headSentAt(c.pose)
			if got != c.want || ok != c.wantOK {
				t.Errorf("headSentAt(%v) = %d, %v; want %d, %v", c.pose.Pos, got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestPoseFanoutQuantile(t *testing.T) {
	var f poseFanout
	if d, n := f.quantile(0.5); d != 0 || n != 0 {
		t.Fatalf("quantile(0.5) of nothing = %s, %d; want 0, 0", d, n)
	}
	for i := 1; i <= 100; i++ {
		f.observe(time.Duration(i) * time.Millisecond)
	}
	f.observe(time.Hour) // beyond the histogram: counted in its last bucket
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0, time.Millisecond},
		{0.5, 51 * time.Millisecond},
		{0.99, 100 * time.Millisecond},
		{1, delayBuckets * time.Millisecond},
	}
	for _, c := range cases {
		if got, n := f.quantile(c.q); got != c.want || n != 101 {
			t.Errorf("quantile(%g) = %s, %d; want %s, 101", c.q, got, n, c.want)
		}
	}
	if got := time.Duration(f.maxNS.Load()); got != time.Hour {
		t.Errorf("max = %s, want 1h", got)
	}
}

// A poses message as the realm writes it: a near member with hands, a far
// one head only.
const rawPosesSample = `{"type":"poses","scene":"foundry","poses":[` +
	`{"avatar":"av_1","head":{"pos":[0.1,1.6,-0.5],"rot":[0,0,0,1]},"left":{"pos":[-0.2,1.1,-0.6],"rot":[0,0,0,1]},"right":{"pos":[0.2,1.1,-0.6],"rot":[0,0,0,1]}},` +
	`{"avatar":"av_2","head":{"pos":[12.5,1.7,1e-05],"rot":[0,0.70710677,0,0.70710677]}}]}`

func TestScanPose(t *testing.T) {
	rest := []byte(rawPosesSample)
	want := []struct {
		id   string
		head [3]float32
	}{{"av_1", [3]float32{0.1, 1.6, -0.5}}, {"av_2", [3]float32{12.5, 1.7, 1e-05}}}
	for _, w := range want {
		id, head, next, ok := scanPose(rest)
		if !ok || string(id) != w.id || head != w.head {
			t.Fatalf("scanPose = %q %v %v; want %s at %v", id, head, ok, w.id, w.head)
		}
		rest = next
	}
	if _, _, _, ok := scanPose(rest); ok {
		t.Error("scanPose found a third pose in a message of two")
	}
	for _, bad := range []string{
		`{"avatar":"av_1`,
		`{"avatar":"av_1","head":{"pos":[1,2`,
		`{"avatar":"av_1","head":{"pos":[1,x,3],"rot":[0,0,0,1]}}`,
		`{"avatar":"av_1","head":{"pos":[,,],"rot":[0,0,0,1]}}`,
	} {
		if id, head, _, ok := scanPose([]byte(bad)); ok {
			t.Errorf("scanPose(%q) = %q %v, want not ok", bad, id, head)
		}
	}
}

// TestReceiveRawPoses: every pose is counted; those received by a timing
// avatar are matched with the frame their head came from.
func TestReceiveRawPoses(t *testing.T) {
	r := &loadRun{byAvatar: map[string]*loadAvatar{"av_1": {}, "av_2": {}}}
	sent := time.Now().Add(-40 * time.Millisecond).UnixNano()
	r.byAvatar["av_1"].recordHead(head(0.1, 1.6, -0.5), sent)
	r.byAvatar["av_2"].recordHead(head(3, 3, 3), sent) // not the pose av_2's message carries
	timing, counting := &loadAvatar{timesPoses: true}, &loadAvatar{}

	r.receiveRawPoses(timing, []byte(rawPosesSample)) // before measuring: ignored
	r.measuring.Store(true)
	r.receiveRawPoses(timing, []byte(rawPosesSample))
	r.receiveRawPoses(counting, []byte(rawPosesSample))
	if m, p := r.fanout.messages.Load(), r.fanout.poses.Load(); m != 2 || p != 4 {
		t.Errorf("counted %d messages and %d poses, want 2 and 4", m, p)
	}
	d, n := r.fanout.quantile(0.5)
	if n != 1 || d < 40*time.Millisecond || r.fanout.unmatched.Load() != 1 {
		t.Errorf("timed %d poses (median %s), %d unmatched; want av_1's at least 40ms late, av_2's unmatched", n, d, r.fanout.unmatched.Load())
	}
}

func TestInterestCeiling(t *testing.T) {
	cases := []struct {
		n    int
		rate float64
		want float64
	}{
		{1, 9, 0},
		{10, 9, 10 * 9 * 9},
		{1000, 9, 1000 * (32*9 + 96*5 + 871*1)},
		{1000, 30, 1000 * (32*20 + 96*5 + 871*1)},
		{100, 0.5, 100 * 99 * 0.5},
	}
	for _, c := range cases {
		if got := interestCeiling(c.n, c.rate); got != c.want {
			t.Errorf("interestCeiling(%d, %g) = %g, want %g", c.n, c.rate, got, c.want)
		}
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (zero realm) S 1 4242 4242 0 -1 4194560 12 0 0 0 250 130 0 0 20 0 17 0 100 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")
	s, err := parseProcStat(stat)
	if err != nil || s.cpu != 3800*time.Millisecond || s.threads != 17 {
		t.Fatalf("parseProcStat = %+v, %v; want 3.8s of CPU and 17 threads", s, err)
	}
	if _, err := parseProcStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("parseProcStat of a short line = nil error, want one")
	}
	rss, err := parseProcRSS([]byte("Name:\tzerorealm\nVmPeak:\t  900 kB\nVmRSS:\t  2048 kB\nThreads:\t17\n"))
	if err != nil || rss != 2048<<10 {
		t.Fatalf("parseProcRSS = %d, %v; want 2 MiB", rss, err)
	}
	if _, err := parseProcRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseProcRSS without VmRSS = nil error, want one")
	}
	own, err := readProc(os.Getpid())
	if err != nil || !own.ok || own.rss <= 0 || own.threads < 1 {
		t.Fatalf("readProc(own pid) = %+v, %v; want this process's figures", own, err)
	}
}

// TestLoadFanout runs the load tool against a realm in this process with a
// few avatars in one scene: they join, stream, and receive each other's
// poses, timed; one reads slowly and is counted apart.
func TestLoadFanout(t *testing.T) {
	if testing.Short() {
		t.Skip("signs in avatars and streams for seconds")
	}
	url, _, stop := startRealm(t, []string{"--listen", "localhost:0", "--data", t.TempDir(), "--nats-listen", "", "--log-level", "warn"})
	defer stop()
	var out, stderr syncBuffer
	code := run(context.Background(), []string{"load", "--url", url, "--avatars", "4", "--hz", "40", "--batch", "2",
		"--duration", "2s", "--enroll-timeout", "1s", "--transport", "ws", "--scene", "foundry", "--delay-sample", "1", "--slow-readers", "1",
		"--realm-pid", strconv.Itoa(os.Getpid())}, &out, &stderr)
	if code != 0 {
		t.Fatalf("load exited %d: %s%s", code, out.String(), stderr.String())
	}
	report := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`avatars +4 joined, 4 streaming at the end of the run, 0 dropped`),
		regexp.MustCompile(`pose fan-out +delivered [1-9][0-9,]* poses/s to 3 avatars`),
		regexp.MustCompile(`slow readers +1 avatars reading at most 5 messages/s received [0-9,]+ poses/s each in [0-9.]+ messages/s each`),
		regexp.MustCompile(`pose delay +p50 \S+ +p99 \S+`),
		regexp.MustCompile(`realm process +pid \d+, read from /proc: [0-9.]+ cores, RSS [1-9]\d* MiB`),
	} {
		if !want.MatchString(report) {
			t.Errorf("the report has no line matching %s:\n%s", want, report)
		}
	}
}

// TestLoadCountsNodeBusy runs the load tool against a realm that serves
// one XR stream: one avatar streams, the other is refused with node-busy,
// counted, and not taken for a crash.
func TestLoadCountsNodeBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("signs in avatars and streams for seconds")
	}
	url, _, stop := startRealm(t, []string{"--listen", "localhost:0", "--data", t.TempDir(), "--nats-listen", "", "--log-level", "warn", "--max-xr-streams", "1"})
	defer stop()
	var out, stderr syncBuffer
	code := run(context.Background(), []string{"load", "--url", url, "--avatars", "2", "--hz", "40", "--batch", "2",
		"--duration", "1s", "--enroll-timeout", "1s", "--transport", "ws"}, &out, &stderr)
	if code != 0 {
		t.Fatalf("load exited %d: %s%s", code, out.String(), stderr.String())
	}
	want := regexp.MustCompile(`node busy +[1-9]\d* refusals of a new stream \(node-busy\), to 1 avatars; 0 open streams shed, of 0 avatars; each retried after its retry_after; 1 of 2 avatars' streams opened`)
	if report := out.String(); !want.MatchString(report) {
		t.Errorf("the report has no line matching %s:\n%s", want, report)
	}
}
