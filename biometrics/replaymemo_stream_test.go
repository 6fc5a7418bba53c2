package biometrics_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/evaluation"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// realRecordingsDir is where the real recordings sit beside the repository.
const realRecordingsDir = "../../shared/datasets/xr-archery"

// scriptedStream is one stream of a scripted crowd: its frames, and the
// tick of 100 ms at which it starts sending them in device time.
type scriptedStream struct {
	name   string
	frames []biometrics.Frame
	start  int
}

// replayedFrames is a copy of frames as an attacker plays it: device
// times rebased and scaled by warp (a pace of 1.25 plays 1.25 times
// faster), hands moved by noise metres.
func replayedFrames(frames []biometrics.Frame, warp, noise float64, rng *rand.Rand) []biometrics.Frame {
	out := make([]biometrics.Frame, len(frames))
	base := uint64(7_000_000_000) + uint64(rng.IntN(1_000_000))
	for i, f := range frames {
		f.TimeUS = base + uint64(float64(f.TimeUS-frames[0].TimeUS)/warp)
		f.Seq = uint32(i)
		f.Gaze = nil
		for _, p := range []*biometrics.Pose{&f.Left, &f.Right} {
			for k := range p.Pos {
				p.Pos[k] += float32(noise * rng.NormFloat64())
			}
		}
		out[i] = f
	}
	return out
}

// crowdTraces streams the script into e, every stream a little each tick
// as a node receives them side by side, and returns each stream's trace:
// after every push that changed them, its runs of windows found on
// earlier motion (the decision of every judged window) and the liveness
// reasons it was given.
func crowdTraces(e *biometrics.Engine, script []scriptedStream, ticks int) [][]string {
	clock := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	streams := make([]*biometrics.Stream, len(script))
	pos := make([]int, len(script))
	traces := make([][]string, len(script))
	last := make([]string, len(script))
	for tick := 0; tick < ticks; tick++ {
		for i, sc := range script {
			if tick < sc.start || pos[i] == len(sc.frames) {
				continue
			}
			if streams[i] == nil {
				streams[i] = e.NewStream(sc.name, nil)
			}
			cutoff := sc.frames[0].TimeUS + uint64(tick-sc.start+1)*100_000
			j := pos[i]
			for j < len(sc.frames) && sc.frames[j].TimeUS < cutoff {
				j++
			}
			evs := streams[i].Push(sc.frames[pos[i]:j], clock)
			pos[i] = j
			copied, looped := biometrics.ReplayRuns(streams[i])
			state := fmt.Sprintf("copied %d looped %d", copied, looped)
			for _, ev := range evs {
				if ev.Kind == biometrics.EventLiveness {
					state += " " + ev.Reason
				}
			}
			if state != last[i] {
				traces[i] = append(traces[i], fmt.Sprintf("tick %d: %s", tick, state))
				last[i] = state
			}
		}
		clock = clock.Add(100 * time.Millisecond)
	}
	for _, s := range streams {
		if s != nil {
			s.Close()
		}
	}
	return traces
}

// TestReusedLookupsJudgeAsFullLookups: a node whose streams' lookups start
// from their previous windows' results judges every window of every
// stream as a node that reads everything again: the same windows found on
// earlier motion, the same liveness reasons at the same ticks, for a crowd
// of synthetic people and the real recordings (when present) streaming
// side by side, and their verbatim, noisy and time-warped replays through
// other streams while the originals still stream.
func TestReusedLookupsJudgeAsFullLookups(t *testing.T) {
	const ticks = 700
	rng := rand.New(rand.NewPCG(41, 42))
	var script, victims []scriptedStream
	for i := range 16 {
		g := synth.NewPerson(int64(300 + i)).Session(1)
		victims = append(victims, scriptedStream{name: fmt.Sprintf("synthetic-%d", i), frames: g.Frames(ticks*72/10, 72)})
	}
	recs, err := evaluation.ReadRecordings(realRecordingsDir)
	if err != nil {
		t.Logf("real recordings absent (%v): synthetic motion only", err)
	}
	for i, r := range recs[:min(len(recs), 6)] {
		frames := r.Probe
		for k, f := range frames {
			if f.TimeUS-frames[0].TimeUS > uint64(ticks)*100_000 {
				frames = frames[:k]
				break
			}
		}
		victims = append(victims, scriptedStream{name: fmt.Sprintf("real-%d", i), frames: frames})
	}
	script = append(script, victims...)
	for i, v := range victims[:10] {
		for k, copy := range []struct{ warp, noise float64 }{{1, 0}, {1, 0.001}, {1.25, 0}, {0.8, 0}} {
			if (i+k)%2 == 1 {
				continue
			}
			v := v
			if i >= 6 && len(recs) > 0 {
				v = victims[16+i-6]
			}
			script = append(script, scriptedStream{
				name:   fmt.Sprintf("replay-%d-%d", i, k),
				frames: replayedFrames(v.frames, copy.warp, copy.noise, rng),
				start:  80 + 40*i + 15*k,
			})
		}
	}
	engines := [2]*biometrics.Engine{}
	for k := range engines {
		if engines[k], err = biometrics.NewEngine(biometrics.Config{}); err != nil {
			t.Fatal(err)
		}
	}
	biometrics.FullReplayLookups(engines[1])
	reusing, full := crowdTraces(engines[0], script, ticks), crowdTraces(engines[1], script, ticks)
	replays := 0
	for i := range script {
		if !slices.Equal(reusing[i], full[i]) {
			t.Errorf("%s: reusing lookups judged\n%v\nreading everything\n%v", script[i].name, reusing[i], full[i])
		}
		for _, line := range full[i] {
			if strings.HasSuffix(line, " "+biometrics.LivenessReplay) {
				replays++
			}
		}
	}
	reused, looked := biometrics.ReplayMemoReuse(engines[0])
	t.Logf("%d streams, %d replay verdicts; %d of %d points taken from the memo", len(script), replays, reused, looked)
	if replays < 10 || reused < looked/4 {
		t.Fatalf("%d replay verdicts, %d of %d points reused: the test says too little", replays, reused, looked)
	}
}
