package biometrics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// pushUntilEnrolled feeds g's motion a second at a time until the stream
// reports EventEnrolled or max seconds have passed, and returns the
// template and the seconds it took (0 and max when it never enrolled).
func pushUntilEnrolled(t *testing.T, s *biometrics.Stream, g *synth.Generator, clock *time.Time, maxSeconds int) (*biometrics.Template, int) {
	t.Helper()
	for sec := 1; sec <= maxSeconds; sec++ {
		for _, ev := range push(s, g.Frames(72, 72), clock) {
			switch ev.Kind {
			case biometrics.EventEnrolled:
				return ev.Template, sec
			case biometrics.EventLiveness:
				t.Fatalf("genuine motion failed liveness: %s", ev.Reason)
			}
		}
	}
	return nil, maxSeconds
}

// TestEnrollmentSetAsideResumesInTheNextStream: a stream that closes part
// of the way through its enrollment hands what it collected to the
// avatar's next stream, which needs only the windows still missing, and
// the template it makes verifies its person.
func TestEnrollmentSetAsideResumesInTheNextStream(t *testing.T) {
	e := newEngine(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := synth.NewPerson(42).Session(1)

	first := e.NewStream("ada", nil)
	first.StartEnrollment(20 * time.Second)
	if tmpl, _ := pushUntilEnrolled(t, first, g, &clock, 12); tmpl != nil {
		t.Fatal("a 20 s enrollment finished after 12 s")
	}
	st := first.Stats()
	if !st.Enrolling || st.EnrollWant != 20 || st.EnrollCollected < 8 || st.EnrollCollected > 12 {
		t.Fatalf("after 12 s of a 20 s enrollment: enrolling %v, %d of %d windows; want about 11 of 20", st.Enrolling, st.EnrollCollected, st.EnrollWant)
	}
	collected := st.EnrollCollected
	en := first.SetAsideEnrollment()
	if en == nil || en.Collected() != collected || en.Want() != 20 || en.Bytes() <= 0 {
		t.Fatalf("set aside %+v, want %d of 20 windows", en, collected)
	}
	if st := first.Stats(); st.Enrolling || st.EnrollCollected != 0 {
		t.Fatalf("a stream whose enrollment was set aside still enrolls: %+v", st)
	}
	if again := first.SetAsideEnrollment(); again != nil {
		t.Fatalf("a second set-aside gave %d windows, want nothing", again.Collected())
	}
	first.Close()

	// Another avatar's stream cannot take it.
	if err := e.NewStream("bob", nil).ResumeEnrollment(en); !errors.Is(err, biometrics.ErrEnrollmentResume) {
		t.Fatalf("bob's stream resumed ada's enrollment: %v", err)
	}

	// The headset comes back 20 s later on a new stream.
	clock = clock.Add(20 * time.Second)
	g.SetTime(g.TimeUS()+20_000_000, 0)
	next := e.NewStream("ada", nil)
	if err := next.ResumeEnrollment(en); err != nil {
		t.Fatal(err)
	}
	if st := next.Stats(); !st.Enrolling || st.EnrollCollected != collected {
		t.Fatalf("resumed stream: enrolling %v with %d windows, want %d", st.Enrolling, st.EnrollCollected, collected)
	}
	if err := e.NewStream("ada", nil).ResumeEnrollment(en); !errors.Is(err, biometrics.ErrEnrollmentResume) {
		t.Fatalf("an enrollment resumed twice: %v", err)
	}
	tmpl, took := pushUntilEnrolled(t, next, g, &clock, 30)
	if tmpl == nil {
		t.Fatal("the resumed enrollment never finished")
	}
	// A new stream's first window needs 2 s of motion, then one a second.
	if missing := 20 - collected; took != missing+1 {
		t.Errorf("the resumed enrollment took %d s, want %d: its %d missing windows", took, missing+1, missing)
	}
	if tmpl.Windows != 20 {
		t.Errorf("template of %d windows, want 20", tmpl.Windows)
	}
	var last float64
	for _, ev := range push(next, g.Frames(10*72, 72), &clock) {
		if ev.Kind == biometrics.EventScore {
			last = ev.Probability
		}
	}
	if last < 0.9 {
		t.Errorf("match probability of the wearer on the template from two streams = %.2f, want at least 0.9", last)
	}
}

// TestEnrollmentEndsAtMotionThatIsNotLive: motion that fails a liveness
// check ends the enrollment it arrives in, with nothing kept, however
// live the motion after it is; only a new StartEnrollment begins again.
func TestEnrollmentEndsAtMotionThatIsNotLive(t *testing.T) {
	e := newEngine(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := synth.NewPerson(7).Session(1)
	s := e.NewStream("ada", nil)
	s.StartEnrollment(20 * time.Second)
	if tmpl, _ := pushUntilEnrolled(t, s, g, &clock, 8); tmpl != nil {
		t.Fatal("a 20 s enrollment finished after 8 s")
	}
	// 15 s of motion read in one instant: a device sending faster than
	// real time (impossible timing).
	failed := false
	for range 15 * 18 {
		for _, ev := range s.Push(g.Frames(4, 72), clock) {
			if ev.Kind == biometrics.EventLiveness && ev.Reason == biometrics.LivenessClock {
				failed = true
				if !strings.Contains(ev.Detail, "more motion than time passed") {
					t.Errorf("clock failure detail %q, want what the device sent", ev.Detail)
				}
			}
			if ev.Kind == biometrics.EventEnrolled {
				t.Fatal("motion sent faster than real time finished an enrollment")
			}
		}
	}
	if !failed {
		t.Fatal("15 s of motion in an instant passed the clock check")
	}
	st := s.Stats()
	if st.Enrolling || st.EnrollCollected != 0 || st.EnrollmentsAbandoned != 1 {
		t.Fatalf("after motion that is not live: enrolling %v with %d windows, %d abandoned; want not enrolling, 0, 1", st.Enrolling, st.EnrollCollected, st.EnrollmentsAbandoned)
	}
	if en := s.SetAsideEnrollment(); en != nil {
		t.Fatalf("an abandoned enrollment was set aside with %d windows", en.Collected())
	}
	for _, ev := range push(s, g.Frames(30*72, 72), &clock) {
		if ev.Kind == biometrics.EventEnrolled {
			t.Fatal("an abandoned enrollment made a template")
		}
	}
	s.StartEnrollment(20 * time.Second)
	if tmpl, _ := pushUntilEnrolled(t, s, g, &clock, 25); tmpl == nil {
		t.Fatal("a new consent did not enroll")
	}
}
