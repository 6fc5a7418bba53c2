package biometrics_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

func keyFor(id string) string { return biometrics.KeyOf(id) }

// enrolledTemplate enrols synthetic person seed from 60 s of motion.
func enrolledTemplate(t testing.TB, seed int64) *biometrics.Template {
	t.Helper()
	ws, err := biometrics.Windows(synth.NewPerson(seed).Session(1).Frames(60*72, 72), biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := biometrics.NewTemplate(ws, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// testPrior is computed once per test binary: each engine keeps its own
// copy of the templates it is given.
var testPrior = sync.OnceValues(func() ([]biometrics.NamedTemplate, error) {
	return synth.Prior(12, 5000, 30*time.Second, biometrics.Config{})
})

func newEngine(t testing.TB) *biometrics.Engine {
	t.Helper()
	prior, err := testPrior()
	if err != nil {
		t.Fatal(err)
	}
	e, err := biometrics.NewEngine(biometrics.Config{}, prior...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// push feeds frames in messages of four with an arrival clock that keeps
// pace with the device clock.
func push(s *biometrics.Stream, frames []biometrics.Frame, clock *time.Time) []biometrics.Event {
	var out []biometrics.Event
	for i := 0; i < len(frames); i += 4 {
		j := min(i+4, len(frames))
		if i > 0 {
			*clock = clock.Add(time.Duration(frames[j-1].TimeUS-frames[i-1].TimeUS) * time.Microsecond)
		}
		out = append(out, s.Push(frames[i:j], *clock)...)
	}
	return out
}

func TestEnrollmentThenScores(t *testing.T) {
	e := newEngine(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := synth.NewPerson(42)
	s := e.NewStream("ada", nil)
	g0 := p.Session(0)
	if evs := push(s, g0.Frames(5*72, 72), &clock); len(evs) != 0 {
		t.Fatalf("unenrolled stream emitted %v, want nothing", evs)
	}
	s.StartEnrollment(20 * time.Second)
	g := p.Session(1)
	g.SetTime(g0.TimeUS(), 0)
	var tmpl *biometrics.Template
	scores := 0
	for _, ev := range push(s, g.Frames(25*72, 72), &clock) {
		switch ev.Kind {
		case biometrics.EventEnrolled:
			tmpl = ev.Template
		case biometrics.EventScore:
			scores++
		case biometrics.EventLiveness:
			t.Errorf("genuine motion failed liveness: %s", ev.Reason)
		}
	}
	if tmpl == nil {
		t.Fatal("no EventEnrolled after 25 s of a 20 s enrollment")
	}
	if tmpl.Windows < 15 {
		t.Errorf("template from %d windows, want about 20", tmpl.Windows)
	}
	var last float64
	before := scores
	for _, ev := range push(s, g.Frames(15*72, 72), &clock) {
		if ev.Kind == biometrics.EventScore {
			scores++
			last = ev.Probability
		}
		if ev.Kind == biometrics.EventLiveness {
			t.Errorf("genuine motion failed liveness: %s", ev.Reason)
		}
	}
	if scores-before < 14 {
		t.Errorf("%d scores in 15 s, want one per second", scores-before)
	}
	if last < 0.9 {
		t.Errorf("match probability of the enrolled wearer = %.2f, want at least 0.9", last)
	}
	st := s.Stats()
	if st.WindowsScored != uint64(scores) || st.FramesAccepted == 0 || len(st.LivenessFailed) != 0 {
		t.Errorf("Stats = %+v, want %d windows scored", st, scores)
	}
	if st.StateBytes <= 0 || st.StateBytes > 256<<10 {
		t.Errorf("StateBytes = %d, want within 256 KiB", st.StateBytes)
	}
}

func TestStreamRejectsFrames(t *testing.T) {
	e := newEngine(t)
	s := e.NewStream("ada", nil)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	frames := synth.NewPerson(1).Session(1).Frames(10, 72)
	untracked := frames[5]
	untracked.Head.Tracked = false
	bad := frames[6]
	bad.Left.Rot = [4]float32{0, 0, 0, 2}
	in := []biometrics.Frame{frames[0], frames[1], frames[1], frames[0], frames[2], untracked, bad, frames[7]}
	s.Push(in, clock)
	st := s.Stats()
	want := map[string]uint64{
		biometrics.ReasonNonMonotonic:  2,
		biometrics.ReasonUntrackedHead: 1,
		biometrics.ReasonQuaternion:    1,
	}
	if !reflect.DeepEqual(st.FramesRejected, want) || st.FramesAccepted != 4 {
		t.Errorf("Stats rejected %v accepted %d, want %v and 4", st.FramesRejected, st.FramesAccepted, want)
	}
}

func TestChangeOfWearer(t *testing.T) {
	e := newEngine(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := synth.NewPerson(10), synth.NewPerson(11)
	s := e.NewStream("a", enrolledTemplate(t, 10))
	ga := a.Session(2)
	var before float64
	for _, ev := range push(s, ga.Frames(20*72, 72), &clock) {
		if ev.Kind == biometrics.EventScore {
			before = ev.Probability
		}
	}
	gb := b.Session(2)
	gb.SetTime(ga.TimeUS(), 0)
	swap := clock
	detected := time.Duration(-1)
	for _, ev := range push(s, gb.Frames(15*72, 72), &clock) {
		if ev.Kind == biometrics.EventScore && ev.Probability < 0.5 && detected < 0 {
			detected = ev.At.Sub(swap)
		}
	}
	if before < 0.9 {
		t.Errorf("probability before the change = %.2f, want at least 0.9", before)
	}
	if detected < 0 || detected > 10*time.Second {
		t.Errorf("change of wearer detected after %v, want within 10s", detected)
	}
}

func TestStreamEnginesShareReplayRegistry(t *testing.T) {
	e := newEngine(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	frames := synth.NewPerson(3).Session(1).Frames(20*72, 72)
	victim := e.NewStream("victim", nil)
	for _, ev := range push(victim, frames, &clock) {
		if ev.Kind == biometrics.EventLiveness {
			t.Fatalf("original motion failed liveness: %s", ev.Reason)
		}
	}
	clock = clock.Add(time.Minute)
	copyFrames := append([]biometrics.Frame(nil), frames...)
	for i := range copyFrames {
		copyFrames[i].TimeUS += 3_600_000_000
	}
	attacker := e.NewStream("mallory", nil)
	var reasons []string
	for _, ev := range push(attacker, copyFrames, &clock) {
		if ev.Kind == biometrics.EventLiveness {
			reasons = append(reasons, ev.Reason)
		}
	}
	if len(reasons) == 0 || reasons[0] != biometrics.LivenessReplay {
		t.Errorf("replay into another avatar's stream: liveness %v, want %q", reasons, biometrics.LivenessReplay)
	}
}

// TestOneStepAFrameIsVerified: people whose motion is integrated one
// step a frame (synth's SetMaxStep, what the load tool streams) enroll,
// pass liveness and are verified, and a change of wearer among them is
// still seen: a load run measures a realm doing its real work.
func TestOneStepAFrameIsVerified(t *testing.T) {
	e := newEngine(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	session := func(seed int64) *synth.Generator {
		g := synth.NewPerson(seed).Session(0)
		g.SetMaxStep(time.Second / 72)
		return g
	}
	for _, seed := range []int64{3, 17} {
		s := e.NewStream(fmt.Sprintf("coarse-%d", seed), nil)
		g := session(seed)
		s.StartEnrollment(20 * time.Second)
		var last float64
		enrolled := false
		for _, ev := range push(s, g.Frames(40*72, 72), &clock) {
			switch ev.Kind {
			case biometrics.EventEnrolled:
				enrolled = true
			case biometrics.EventScore:
				last = ev.Probability
			case biometrics.EventLiveness:
				t.Fatalf("person %d, one step a frame: failed liveness: %s", seed, ev.Reason)
			}
		}
		if !enrolled || last < 0.9 {
			t.Fatalf("person %d, one step a frame: enrolled %v, match probability %.2f; want enrolled and at least 0.9", seed, enrolled, last)
		}
		other := session(seed + 100)
		other.SetTime(g.TimeUS(), 0)
		for _, ev := range push(s, other.Frames(10*72, 72), &clock) {
			if ev.Kind == biometrics.EventScore {
				last = ev.Probability
			}
		}
		if last >= 0.5 {
			t.Fatalf("person %d's stream worn by person %d, one step a frame: match probability %.2f after 10 s; want below 0.5", seed, seed+100, last)
		}
	}
}
