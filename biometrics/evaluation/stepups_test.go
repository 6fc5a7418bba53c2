package evaluation

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// TestStepUpsCountsFallsFromTrusted: synthetic people streaming their
// own second session under their first session's template, in an engine
// of all of them and a prior, rarely fall under the step-up line; the
// same streams taken over half way by the next person's second session
// (a change of wearer on the same device clock) each fall under it at
// least once, and more often in all.
func TestStepUpsCountsFallsFromTrusted(t *testing.T) {
	recs := SyntheticRecordings(8, 11, 40)
	prior, err := synth.Prior(12, 5000, 20*time.Second, biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := RunRecordingStepUps(recs, recs, biometrics.Config{}, prior)
	if err != nil {
		t.Fatal(err)
	}
	if genuine.People != 8 || len(genuine.PerPerson) != 8 || genuine.Windows < 8*30 {
		t.Fatalf("genuine: %+v, want 8 people and about 39 windows each", genuine)
	}
	// Each probe: the person's own second session, then the next
	// person's, on the same headset.
	swapped := make([]Recording, len(recs))
	for i := range recs {
		next := recs[(i+1)%len(recs)]
		swapped[i] = Recording{ID: recs[i].ID, Enroll: recs[i].Enroll, Probe: continueWith(recs[i].Probe, next.Probe)}
	}
	swaps, err := RunRecordingStepUps(recs, swapped, biometrics.Config{}, prior)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range swaps.PerPerson {
		if n < 1 {
			t.Errorf("%s's stream taken over by %s: %d step-ups, want at least 1", recs[i].ID, recs[(i+1)%len(recs)].ID, n)
		}
	}
	if genuine.StepUps >= swaps.StepUps {
		t.Errorf("%d step-ups of genuine streams against %d of streams taken over: want fewer", genuine.StepUps, swaps.StepUps)
	}
	if h := genuine.PerHour(biometrics.DefaultHop); h != float64(genuine.StepUps)/(float64(genuine.Windows)/3600) {
		t.Errorf("PerHour = %v for %d step-ups in %d one-second windows", h, genuine.StepUps, genuine.Windows)
	}
}

// continueWith is a followed by b on the same device clock, b's frames
// shifted to start a frame after a's last.
func continueWith(a, b []biometrics.Frame) []biometrics.Frame {
	out := append([]biometrics.Frame(nil), a...)
	shift := a[len(a)-1].TimeUS + 14_000 - b[0].TimeUS
	seq := a[len(a)-1].Seq + 1 - b[0].Seq
	for _, f := range b {
		f.TimeUS += shift
		f.Seq += seq
		out = append(out, f)
	}
	return out
}
