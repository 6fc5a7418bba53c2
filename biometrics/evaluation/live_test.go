package evaluation

import "testing"

func TestRunLive(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	res, err := RunLive(LiveOptions{Seed: 1, SwapTrials: 20, ReplayTrials: 20, GenuineHours: 3, CrowdPeople: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("swap detected within 10 s: %d/%d, p95 %.1fs; replays %+v; genuine %.1f h: %d false step-ups, %d false liveness %v",
		res.SwapDetected, res.SwapTrials, res.SwapP95, res.Replay, res.GenuineHours, res.FalseStepUps, res.FalseLiveness, res.FalseReasons)
	if float64(res.SwapDetected) < 0.95*float64(res.SwapTrials) {
		t.Errorf("swap detected in %d/%d trials, want at least 95%%", res.SwapDetected, res.SwapTrials)
	}
	if r := res.Replay["verbatim"]; r.Rejected != r.Trials {
		t.Errorf("verbatim replays rejected %d/%d, want all", r.Rejected, r.Trials)
	}
	if r := res.Replay["time-warped"]; float64(r.Rejected) < 0.95*float64(r.Trials) {
		t.Errorf("time-warped replays rejected %d/%d, want at least 95%%", r.Rejected, r.Trials)
	}
	if float64(res.FalseStepUps) >= res.GenuineHours {
		t.Errorf("%d false step-ups in %.1f h of genuine motion, want fewer than one per hour", res.FalseStepUps, res.GenuineHours)
	}
	if res.CrowdAlarmed != 0 {
		t.Errorf("%d of %d people streaming together suspended: %v, want none", res.CrowdAlarmed, res.CrowdPeople, res.CrowdReasons)
	}
	if res.FalseLiveness != 0 {
		t.Errorf("%d liveness failures on genuine motion, want 0", res.FalseLiveness)
	}
}
