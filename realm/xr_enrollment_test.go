package realm

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

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

// TestXRStatusSaysEnrolledOnceTheEnrollmentEnds: the status sent with the
// frames that complete an enrollment says enrolled, never not-enrolled.
// Not-enrolled asks the client for a new passkey assertion
// (clients/PROTOCOL.md); the status the same message brought used to be
// made after the stream had finished its enrollment and before the node
// marked the template as the stream's, and said not-enrolled. The
// realm's clock is manual and each message holds a second of motion, so
// that every message brings a status, the completing one included.
func TestXRStatusSaysEnrolledOnceTheEnrollmentEnds(t *testing.T) {
	clk := clock.NewManual(time.Now())
	r := startRealm(t, Config{Listen: "localhost:0", Clock: clk, XREnrollment: 4 * time.Second})
	sess := newClient(t, r).Register(webauthntest.New(), "enrolls")
	s, err := r.sessions.Authenticate(t.Context(), sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	var statuses heard[vr.Status]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: sess.Token, Transport: vr.WebSocket, Logger: testLogger(t), OnStatus: statuses.add})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	conn := &xrBenchConn{sess: s, send: make(chan []byte, 1024)}
	link := r.xr.Attach(conn)
	defer link.End()

	const hz, perMessage = 30, 30 // a second of motion a message
	frames := synth.NewPerson(7).Session(0).Frames(12*perMessage, hz)
	for i := range 12 {
		batch := make([]vr.Frame, perMessage)
		for j := range batch {
			batch[j] = vrFrame(frames[i*perMessage+j])
		}
		msg, err := vr.AppendMessage(nil, batch)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		link.Frames(xr.TransportWebSocket, msg)
	}
	var seen []string
	eventuallyWithin(t, "a status saying enrolled", 10*time.Second, func() bool {
		seen = seen[:0]
		for _, st := range statuses.all() {
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
