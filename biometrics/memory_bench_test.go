package biometrics_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// BenchmarkStreamRetained is what one live, enrolled avatar costs the node's
// biometrics in memory once it streams: its template in the population, its
// stream (template copy, resampling, windows, liveness memory) and its share
// of the replay registry after retainedStreamSeconds of motion. It is the
// heap still live after a collection, per avatar, so that what a stream
// keeps between windows is counted and what a window merely passes through
// is not. The figure is bytes/stream; docs/benchmarks.md keeps its history.
func BenchmarkStreamRetained(b *testing.B) {
	const streams = 64
	const retainedStreamSeconds = 30
	prior, err := testPrior()
	if err != nil {
		b.Fatal(err)
	}
	people, err := synth.Prior(streams, 9000, 20*time.Second, biometrics.Config{})
	if err != nil {
		b.Fatal(err)
	}
	motion := make([][]biometrics.Frame, streams)
	for i := range motion {
		motion[i] = synth.NewPerson(9000+int64(i)).Session(2).Frames(retainedStreamSeconds*72, 72)
	}
	var perStream, stateBytes float64
	b.ResetTimer()
	for range b.N {
		e, err := biometrics.NewEngine(biometrics.Config{}, prior...)
		if err != nil {
			b.Fatal(err)
		}
		before := liveHeap()
		live := make([]*biometrics.Stream, streams)
		for i, p := range people {
			e.SetTemplate(p.ID, p.Template)
			live[i] = e.NewStream(p.ID, p.Template)
			live[i].SetTrusted(true)
		}
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		// Interleaved as a node sees them: every stream's next message in
		// turn, 8 frames (1/9 s) at a time.
		for at := 0; at < len(motion[0]); at += 8 {
			clock = clock.Add(8 * time.Second / 72)
			for i, s := range live {
				s.Push(motion[i][at:min(at+8, len(motion[i]))], clock)
			}
		}
		after := liveHeap()
		perStream += float64(after-before) / streams
		var counted int
		for _, s := range live {
			st := s.Stats()
			if st.WindowsScored == 0 {
				b.Fatalf("stream scored no window in %d s: %+v", retainedStreamSeconds, st)
			}
			counted += st.StateBytes
		}
		stateBytes += float64(counted) / streams
		runtime.KeepAlive(live)
		runtime.KeepAlive(e)
	}
	b.ReportMetric(perStream/float64(b.N), "bytes/stream")
	b.ReportMetric(stateBytes/float64(b.N), "state-bytes/stream")
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
