package biometrics_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/natstest"
)

func BenchmarkDecode(b *testing.B) {
	frames := synth.NewPerson(1).Session(1).Frames(biometrics.MaxFramesPerMessage, 72)
	for _, n := range []int{1, 4, 32} {
		b.Run(fmt.Sprintf("frames=%d", n), func(b *testing.B) {
			msg, err := biometrics.Encode(nil, frames[:n])
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]biometrics.Frame, 0, n)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				out, _, err := biometrics.Decode(msg, dst[:0])
				if err != nil || len(out) != n {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
		})
	}
}

// BenchmarkPush is the whole per-frame cost of a live, enrolled stream:
// checks, resampling, and per hop the features, liveness (replay registry
// included) and scoring, amortized over the frames.
func BenchmarkPush(b *testing.B) {
	benchPush(b, newEngine(b), false)
}

// BenchmarkPushTrusted is BenchmarkPush for a stream the realm marks
// trusted, as most of a node's streams are: each confident window also
// adapts the template, so the claim's cohort normalization is prepared
// again for the next window.
func BenchmarkPushTrusted(b *testing.B) {
	benchPush(b, newEngine(b), true)
}

// BenchmarkPushThinning is BenchmarkPushTrusted on a node that thins
// (Engine.SetThinning): once sure, the stream is judged every other
// window.
func BenchmarkPushThinning(b *testing.B) {
	e := newEngine(b)
	e.SetThinning(true)
	benchPush(b, e, true)
}

// BenchmarkPushSharingPaths is BenchmarkPush on a node of a cluster: the
// engine also hashes and hands out its path cells, and judges windows
// against a peer's (filled with two minutes of another person's motion).
func BenchmarkPushSharingPaths(b *testing.B) {
	e, peer := newEngine(b), newEngine(b)
	key := make([]byte, 32)
	if err := e.SharePaths(key, func(biometrics.PathBatch) {}); err != nil {
		b.Fatal(err)
	}
	if err := peer.SharePaths(key, func(p biometrics.PathBatch) { e.AddPeerPaths("peer", p, p.At()) }); err != nil {
		b.Fatal(err)
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	push(peer.NewStream("other", nil), synth.NewPerson(10).Session(1).Frames(120*72, 72), &clock)
	if e.PathStats().Received == 0 {
		b.Fatal("the peer shared no cells")
	}
	benchPush(b, e, false)
}

func benchPush(b *testing.B, e *biometrics.Engine, trusted bool) {
	for _, batch := range []int{1, 4} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := e.NewStream("bench", enrolledTemplate(b, 9))
			s.SetTrusted(trusted)
			g := synth.NewPerson(9).Session(2)
			frames := g.Frames(120*72, 72)
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var shift uint64
			span := frames[len(frames)-1].TimeUS - frames[0].TimeUS + 14_000
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for n := 0; n < b.N; n += batch {
				if i+batch > len(frames) {
					// Loop the clip on a later clock; liveness will call it a
					// loop, which costs the same as passing.
					i, shift = 0, shift+span
				}
				chunk := frames[i : i+batch]
				if shift != 0 {
					chunk = append([]biometrics.Frame(nil), chunk...)
					for k := range chunk {
						chunk[k].TimeUS += shift
					}
				}
				clock = clock.Add(time.Duration(batch) * 14 * time.Millisecond)
				s.Push(chunk, clock)
				i += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
			b.ReportMetric(float64(s.Stats().StateBytes), "state-bytes")
			if p := s.Stats().Probability; trusted && b.N >= 20*72 && p < 0.9 {
				b.Fatalf("match probability %.2f: the trusted stream's windows were below the adaptation line, so none adapted", p)
			}
			if st := s.Stats(); e.Thinning() && b.N >= 20*72 && st.WindowsThinned < st.WindowsScored/2 {
				b.Fatalf("%d windows thinned, %d scored: the stream was not thinned", st.WindowsThinned, st.WindowsScored)
			}
		})
	}
}

// BenchmarkExtract is the cost of one window's features (2 s at 50 Hz) of
// a synthetic person with gaze and heart rate, with the extractor reused
// as the engine lends it.
func BenchmarkExtract(b *testing.B) {
	p := synth.NewPerson(9)
	p.HasGaze, p.HasHeartRate = true, true
	bench := biometrics.NewExtractionBench(p.Session(2).Frames(30*72, 72))
	if bench.Windows() == 0 {
		b.Fatal("no windows")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if !bench.Extract(i) {
			b.Fatal("a window without features")
		}
	}
}

// BenchmarkScoreWindow is the cost of scoring one window against a claim
// with cohorts of several sizes.
func BenchmarkScoreWindow(b *testing.B) {
	ws, err := biometrics.Windows(synth.NewPerson(3).Session(2).Frames(10*72, 72), biometrics.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{8, 64} {
		b.Run(fmt.Sprintf("cohort=%d", n), func(b *testing.B) {
			prior, err := synth.Prior(n+1, 100, 20*time.Second, biometrics.Config{})
			if err != nil {
				b.Fatal(err)
			}
			m, err := biometrics.FitModel(prior, n+1)
			if err != nil {
				b.Fatal(err)
			}
			claim := m.Claim(prior[0].ID, prior[0].Template)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				m.Score(claim, m.Embed(&ws[i%len(ws)]))
			}
		})
	}
}

// BenchmarkStreamMemory is the heap a node holds per live enrolled avatar
// once its stream is warm, as the realm has it: the background model's
// population keeps the avatar's template, the stream was opened with its
// own copy read from the store, and 12 s of motion went through it (so the
// replay registry holds the avatar's points too). Run it with -benchtime 1x:
// each iteration opens a fresh set of streams.
func BenchmarkStreamMemory(b *testing.B) {
	const avatars = 64
	motion := make([][]biometrics.Frame, avatars)
	stored := make([][]byte, avatars)
	for i := range avatars {
		seed := int64(100 + i)
		motion[i] = synth.NewPerson(seed).Session(2).Frames(12*72, 72)
		t, err := biometrics.NewTemplate(mustWindows(b, synth.NewPerson(seed).Session(1).Frames(30*72, 72)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			b.Fatal(err)
		}
		if stored[i], err = t.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	decode := func(i int) *biometrics.Template {
		var t biometrics.Template
		if err := t.UnmarshalBinary(stored[i]); err != nil {
			b.Fatal(err)
		}
		return &t
	}
	var heap, state float64
	for range b.N {
		e := newEngine(b)
		before := biometrics.LiveHeap()
		streams := make([]*biometrics.Stream, avatars)
		for i := range avatars {
			id := fmt.Sprintf("avatar-%d", i)
			e.SetTemplate(id, decode(i))
			streams[i] = e.NewStream(id, decode(i))
		}
		state = 0
		for i, s := range streams {
			clock := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
			push(s, motion[i], &clock)
			state += float64(s.Stats().StateBytes)
		}
		heap = float64(biometrics.LiveHeap()-before) / avatars
		state /= avatars
		runtime.KeepAlive(streams)
		runtime.KeepAlive(e)
	}
	b.ReportMetric(heap, "heap-B/avatar")
	b.ReportMetric(state, "state-B/avatar")
}

func mustWindows(b *testing.B, frames []biometrics.Frame) []biometrics.Features {
	ws, err := biometrics.Windows(frames, biometrics.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return ws
}

// BenchmarkPushThroughPathFeed is BenchmarkPush on a node whose path feed
// shares its cells with a cluster (one NATS server here): what filing,
// batching, encoding, sealing and storing them adds per frame. The feed
// sends a batch whenever it holds MaxPathBatchCells cells (its timer is
// set beyond the run), so that how often it sends follows the frames, as
// on a busy node, and not the benchmark's wall clock.
func BenchmarkPushThroughPathFeed(b *testing.B) {
	srv := natstest.RunServer(b)
	e, f, _ := clusterNodeFlushing(b, srv.ClientURL(), "bench-node", time.Hour)
	benchPush(b, e, false)
	b.StopTimer()
	f.Close() // what is still queued is sent, and counted, before the figures
	if st := f.Stats(); st.SentCells == 0 {
		b.Fatalf("the feed sent no cells: %+v", st)
	}
}
