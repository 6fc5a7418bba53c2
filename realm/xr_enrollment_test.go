package realm

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestXREnrollmentGoesOnAfterTheConnectionDrops: a headset whose
// connection drops half way through its enrollment reconnects with the
// same session, and the enrollment goes on where it stopped, as its
// status messages show, instead of asking for the whole motion again.
func TestXREnrollmentGoesOnAfterTheConnectionDrops(t *testing.T) {
	if testing.Short() {
		t.Skip("streams about 15 s of motion in real time")
	}
	r := startRealm(t, Config{Listen: "localhost:0", XREnrollment: 10 * time.Second})
	sess := newClient(t, r).Register(webauthntest.New(), "interrupted")
	sessionID := sess.Session.ID

	watch := realmtest.NewEnrollmentWatch()
	dial := func() *vr.Client {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: sess.Token, Transport: vr.WebSocket, Logger: testLogger(t),
			OnStatus: watch.OnStatus})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}

	cl := dial()
	w := wear(cl, 5)
	before := watch.Wait(t, "half the enrollment collected", func(p float64) bool { return p >= 0.4 })
	if before.Enrollment != enrollmentCollecting {
		t.Fatalf("status %+v, want enrolling", before)
	}
	w.TakeOff()
	cl.Close()
	waitNoStream(t, r, sessionID)
	text := metricsText(t, r)
	if n := counterValue(text, `zerorealm_xr_enrollments_total{what="set-aside"}`); n != 1 {
		t.Fatalf("enrollments set aside = %v, want 1", n)
	}
	watch.Forget()

	// The same session comes back, the same person moving afresh.
	cl = dial()
	defer cl.Close()
	w = realmtest.WearSession(cl, 5, 1)
	defer w.TakeOff()
	first := watch.Wait(t, "the enrollment's progress after the reconnect", func(float64) bool { return true })
	if first.Enrollment != enrollmentCollecting || *first.EnrollmentProgress < *before.EnrollmentProgress {
		t.Fatalf("after the reconnect: %s at %s, want enrolling from at least %.2f", first.Enrollment, progressText(first), *before.EnrollmentProgress)
	}
	done := watch.Wait(t, "enrolled", func(float64) bool { return false })
	if done.Enrollment != enrollmentDone {
		t.Fatalf("status %+v, want enrolled", done)
	}
	text = metricsText(t, r)
	for what, want := range map[string]float64{"started": 1, "set-aside": 1, "resumed": 1, "abandoned": 0} {
		if n := counterValue(text, fmt.Sprintf(`zerorealm_xr_enrollments_total{what=%q}`, what)); n != want {
			t.Errorf("enrollments %s = %v, want %v", what, n, want)
		}
	}
	tpl, err := r.xr.Templates().Get(context.Background(), sess.Avatar["id"].(string))
	if err != nil || tpl.Windows != 10 {
		t.Fatalf("stored template %+v, %v; want one of 10 windows", tpl, err)
	}
}

func progressText(s vr.Status) string {
	if s.EnrollmentProgress == nil {
		return "no progress"
	}
	return fmt.Sprintf("%.2f", *s.EnrollmentProgress)
}

// streamByHand is a session whose motion a test hands to the node message
// by message, on the node's manual clock, while the session's WebSocket
// client hears what the node tells it.
type streamByHand struct {
	clk      *clock.Manual
	link     *xr.Link
	statuses heard[vr.Status]
	scores   heard[vr.Score]
	frames   []biometrics.Frame
	sent     int
}

// newStreamByHand starts a realm enrolling in enrollment, signs a person
// up and attaches a stream of theirs, whose frames are synthetic motion at
// 30 Hz.
func newStreamByHand(t *testing.T, enrollment time.Duration) *streamByHand {
	t.Helper()
	h := &streamByHand{clk: clock.NewManual(time.Now())}
	r := startRealm(t, Config{Listen: "localhost:0", Clock: h.clk, XREnrollment: enrollment})
	sess := newClient(t, r).Register(webauthntest.New(), "by-hand")
	s, err := r.sessions.Authenticate(t.Context(), sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: sess.Token, Transport: vr.WebSocket, Logger: testLogger(t),
		OnStatus: h.statuses.add, OnScore: h.scores.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	h.link = r.xr.Attach(&xrBenchConn{sess: s, send: make(chan []byte, 1024)})
	t.Cleanup(h.link.End)
	h.frames = synth.NewPerson(7).Session(0).Frames(int(3*enrollment.Seconds()+30)*byHandHz, byHandHz)
	return h
}

const byHandHz = 30

// send hands the node the next n frames in one message, the clock moved
// on by their duration first.
func (h *streamByHand) send(t *testing.T, n int) {
	t.Helper()
	if h.sent+n > len(h.frames) {
		t.Fatalf("the test wants more than its %d frames", len(h.frames))
	}
	batch := make([]vr.Frame, n)
	for j := range batch {
		batch[j] = vrFrame(h.frames[h.sent+j])
	}
	h.sent += n
	msg, err := vr.AppendMessage(nil, batch)
	if err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(time.Duration(n) * time.Second / byHandHz)
	h.link.Frames(xr.TransportWebSocket, msg)
}

// TestXRStatusSaysEnrolledOnceTheEnrollmentEnds: the status sent with the
// frames that complete an enrollment says enrolled, never not-enrolled.
// Not-enrolled asks the client for a new passkey assertion
// (clients/PROTOCOL.md); the status the same message brought used to be
// made after the stream had finished its enrollment and before the node
// marked the template as the stream's, and said not-enrolled. Each
// message holds a second of motion, so that every message brings a
// status, the completing one included.
func TestXRStatusSaysEnrolledOnceTheEnrollmentEnds(t *testing.T) {
	h := newStreamByHand(t, 4*time.Second)
	for range 12 {
		h.send(t, byHandHz) // a second of motion a message
	}
	var seen []string
	eventuallyWithin(t, "a status saying enrolled", 10*time.Second, func() bool {
		seen = seen[:0]
		for _, st := range h.statuses.all() {
			seen = append(seen, st.Enrollment)
		}
		return slices.Contains(seen, enrollmentDone)
	})
	began := slices.Index(seen, enrollmentCollecting)
	if began < 0 {
		t.Fatalf("statuses %v: no enrolling before enrolled", seen)
	}
	for _, e := range seen[began:] {
		if e == enrollmentNone {
			t.Fatalf("statuses %v: not-enrolled after the enrollment began", seen)
		}
	}
}

// TestXRStatusGoesWithTheScore: while a stream's windows are scored, its
// status goes with a window's score, made with the same message and
// queued with it (so that the two leave the node in one write), about a
// second apart and never more than three; before the stream scores, a
// status comes every second. Messages hold 0.3 s of motion, so that a
// status kept on its own second-by-second beat would drift against the
// windows' and come with other messages than the scores.
func TestXRStatusGoesWithTheScore(t *testing.T) {
	h := newStreamByHand(t, 4*time.Second)
	const perMessage = 9 // 0.3 s
	for range 80 {       // 24 s: the enrollment, then about 19 scored windows
		h.send(t, perMessage)
	}
	eventuallyWithin(t, "15 scores", 10*time.Second, func() bool { return len(h.scores.all()) >= 15 })
	time.Sleep(200 * time.Millisecond) // the last message's status, if any, follows its score
	scores, statuses := h.scores.all(), h.statuses.all()
	scoredAt := map[time.Time]bool{}
	for _, sc := range scores {
		scoredAt[sc.At] = true
	}
	firstScore := scores[0].At
	var with, alone int
	var last time.Time
	for _, st := range statuses {
		if !last.IsZero() && st.At.Sub(last) > xrStatusLongestForTest {
			t.Errorf("statuses %s apart (at %s), want at most %s", st.At.Sub(last), st.At.Sub(firstScore), xrStatusLongestForTest)
		}
		last = st.At
		switch {
		case st.At.Before(firstScore):
		case scoredAt[st.At]:
			with++
		default:
			alone++
			t.Errorf("a status %s after the first score came without one", st.At.Sub(firstScore))
		}
	}
	if with < 12 {
		t.Errorf("%d statuses came with a score, of %d scores; want most of them", with, len(scores))
	}
	t.Logf("%d scores; %d statuses with one, %d alone, %d before the first", len(scores), with, alone, len(statuses)-with-alone)
}

// xrStatusLongestForTest is the protocol's bound on the time between two
// statuses while frames flow (clients/PROTOCOL.md).
const xrStatusLongestForTest = 3 * time.Second
