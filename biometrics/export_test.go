package biometrics

import (
	"fmt"
	"slices"
)

// Test-only access for the external test package.
var KeyOf = keyOf

// LiveHeap is the heap in use after two collections (the memory benchmarks').
var LiveHeap = heapInUse

// FullReplayLookups makes e's streams read every point's candidates
// afresh, as before a lookup reused its previous window's results.
func FullReplayLookups(e *Engine) { e.replay.fullLookups = true }

// ReplayRuns is how many windows in a row s found on earlier motion of
// any stream and on its own.
func ReplayRuns(s *Stream) (copied, looped int) { return s.live.copied, s.live.looped }

// ReplayMemoReuse is how many points e's lookups took from their streams'
// memos, of how many they looked up.
func ReplayMemoReuse(e *Engine) (reused, looked uint64) {
	e.replay.mu.Lock()
	defer e.replay.mu.Unlock()
	return e.replay.memoReused, e.replay.memoLooked
}

// SkipWhereMultiplyAddsFuse skips a comparison with the reference
// extractor on builds that fuse multiply-adds.
var SkipWhereMultiplyAddsFuse = skipWhereMultiplyAddsFuse

// ReferenceComparison is what ExtractMatchesReference saw.
type ReferenceComparison struct {
	Windows, Extracted  int // windows cut, and those that had features
	WithGaze, WithHeart int // windows with gaze features, with heart features
	WithGap             int // windows with a segment start after their first sample
	// Diff is the first difference from the reference extractor, "" when
	// every window had the same features to the bit.
	Diff string
}

// ExtractMatchesReference cuts frames into windows as Windows does and
// extracts each with the live extractor and with the reference copy, each
// reused from window to window as the engine reuses its scratch.
func ExtractMatchesReference(frames []Frame) ReferenceComparison {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		return ReferenceComparison{Diff: err.Error()}
	}
	ex, ref := newExtractor(cfg), newReferenceExtractor(cfg)
	var c ReferenceComparison
	eachWindow(frames, cfg, func(win []sample) {
		c.Windows++
		if slices.ContainsFunc(win[1:], func(s sample) bool { return s.segStart }) {
			c.WithGap++
		}
		f, ok, diff := extractBoth(ex, ref, win)
		if diff != "" && c.Diff == "" {
			c.Diff = fmt.Sprintf("window %d (%d..%d µs): %s", c.Windows, win[0].timeUS, win[len(win)-1].timeUS, diff)
		}
		if ok {
			c.Extracted++
			if f.Gaze != nil {
				c.WithGaze++
			}
			if f.Heart != nil {
				c.WithHeart++
			}
		}
	})
	return c
}

// ExtractionBench is the windows of a recording and an extractor to take
// their features with, reused as a stream's scratch is.
type ExtractionBench struct {
	ex      *extractor
	windows [][]sample
}

// NewExtractionBench cuts frames into windows at the default Config.
func NewExtractionBench(frames []Frame) *ExtractionBench {
	cfg, _ := Config{}.withDefaults()
	b := &ExtractionBench{ex: newExtractor(cfg)}
	eachWindow(frames, cfg, func(win []sample) { b.windows = append(b.windows, slices.Clone(win)) })
	return b
}

// Windows is how many windows the recording made.
func (b *ExtractionBench) Windows() int { return len(b.windows) }

// Extract takes the features of window i, modulo their number.
func (b *ExtractionBench) Extract(i int) bool {
	_, ok := b.ex.extract(b.windows[i%len(b.windows)])
	return ok
}

// FiledPoint is one of a stream's points in the replay registry: its
// number, and whether it is joined to the stream's point before it.
type FiledPoint struct {
	Idx    uint32
	Joined bool
}

// FiledPoints is what s filed in e's replay registry, oldest first.
func FiledPoints(e *Engine, s *Stream) []FiledPoint {
	e.replay.mu.Lock()
	defer e.replay.mu.Unlock()
	var out []FiledPoint
	for gi := len(e.replay.gens) - 1; gi >= 0; gi-- {
		g := e.replay.gens[gi]
		if g == nil {
			continue
		}
		for _, p := range g.points {
			if p.stream == s.n {
				out = append(out, FiledPoint{Idx: p.idx, Joined: p.prev >= 0})
			}
		}
	}
	return out
}
