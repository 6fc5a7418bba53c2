package biometrics_test

import (
	"testing"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// TestExtractMatchesReferenceOnSyntheticPeople: for synthetic people with
// and without gaze and heart rate, at two headset rates, through gaps that
// start new segments inside windows and spells of untracked hands, every
// window has the reference extractor's features to the bit.
func TestExtractMatchesReferenceOnSyntheticPeople(t *testing.T) {
	biometrics.SkipWhereMultiplyAddsFuse(t)
	var total biometrics.ReferenceComparison
	for seed := int64(1); seed <= 12; seed++ {
		hz := 72.0
		if seed%3 == 0 {
			hz = 90
		}
		frames := synth.NewPerson(seed).Session(int(seed%2)+1).Frames(int(30*hz), hz)
		// A gap of 400 ms (past MaxGap) every 7 s, and the left hand lost
		// for 600 ms every 5 s (enough to skip some windows), its pose
		// zeroed for some people, as some runtimes send it.
		var kept []biometrics.Frame
		for i, f := range frames {
			at := float64(i) / hz
			if at > 1 && int(at*1000)%7000 < 400 {
				continue
			}
			if int(at*1000)%5000 < 600 {
				f.Left.Tracked = false
				if seed%2 == 0 {
					f.Left = biometrics.Pose{}
				}
			}
			kept = append(kept, f)
		}
		c := biometrics.ExtractMatchesReference(kept)
		if c.Diff != "" {
			t.Fatalf("person %d: %s", seed, c.Diff)
		}
		total.Windows += c.Windows
		total.Extracted += c.Extracted
		total.WithGaze += c.WithGaze
		total.WithHeart += c.WithHeart
		total.WithGap += c.WithGap
	}
	t.Logf("%+v", total)
	if total.Extracted == 0 || total.Extracted == total.Windows || total.WithGap == 0 || total.WithGaze == 0 || total.WithGaze == total.Extracted ||
		total.WithHeart == 0 || total.WithHeart == total.Extracted {
		t.Fatalf("the recordings miss a case the comparison is for: %+v", total)
	}
}
