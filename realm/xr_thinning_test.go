package realm

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// TestXRThinningNodeKeepsJudgingItsWearer: on a node that thins, a
// trusted wearer's stream is judged every other window, its scores keep
// coming over the wire and keep it trusted, the windows left are counted,
// and a change of wearer still takes the trust away.
func TestXRThinningNodeKeepsJudgingItsWearer(t *testing.T) {
	if testing.Short() {
		t.Skip("streams about half a minute of motion in real time")
	}
	r := startRealm(t, Config{Listen: "localhost:0", XREnrollment: 8 * time.Second})
	type score struct {
		state string
		prob  float64
	}
	scores := make(chan score, 1024)
	statuses := make(chan string, 64)
	sess := newClient(t, r).Register(webauthntest.New(), "wearer")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{
		URL: r.URL(), Token: sess.Token, Transport: vr.WebSocket, Logger: testLogger(t),
		OnScore: func(s vr.Score) {
			select {
			case scores <- score{s.State, s.Probability}:
			default:
			}
		},
		OnStatus: func(s vr.Status) {
			select {
			case statuses <- s.Enrollment:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := wear(cl, 11)
	for deadline := time.After(40 * time.Second); ; {
		select {
		case st := <-statuses:
			if st != enrollmentDone {
				continue
			}
		case <-deadline:
			t.Fatal("not enrolled within 40 s")
		}
		break
	}
	waitScore := func(what string, limit time.Duration, ok func(score) bool) (score, int) {
		t.Helper()
		deadline := time.After(limit)
		n := 0
		for {
			select {
			case s := <-scores:
				n++
				if ok(s) {
					return s, n
				}
			case <-deadline:
				t.Fatalf("%s: not within %s", what, limit)
			}
		}
	}
	waitScore("trusted on a confident match", 30*time.Second, func(s score) bool { return s.state == "trusted" && s.prob >= 0.9 })

	r.xr.Engine().SetThinning(true)
	before := counterValue(metricsText(t, r), "zerorealm_xr_windows_thinned_total")
	// Eight scores thinned take about 16 s of motion (a window a second,
	// every other one judged); each keeps the wearer trusted.
	for i := range 8 {
		s, _ := waitScore("a score while thinning", 10*time.Second, func(score) bool { return true })
		if s.state != "trusted" {
			t.Fatalf("score %d while thinning: %s at %.3f, want trusted", i, s.state, s.prob)
		}
	}
	text := metricsText(t, r)
	thinned := counterValue(text, "zerorealm_xr_windows_thinned_total") - before
	if thinned < 6 {
		t.Errorf("%v windows thinned while 8 were scored, want about as many", thinned)
	}
	if !strings.Contains(text, "\nzerorealm_xr_thinning 1\n") {
		t.Error("zerorealm_xr_thinning is not 1 while the node thins")
	}

	w = w.HandOver(23)
	defer w.TakeOff()
	got, _ := waitScore("a different wearer loses trust", 30*time.Second, func(s score) bool { return s.state != "trusted" })
	t.Logf("after the hand-over: %s at %.3f", got.state, got.prob)
}

// counterValue is the value of an unlabelled series of /metrics, 0 when
// absent.
func counterValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return 0
}
