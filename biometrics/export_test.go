package biometrics

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
