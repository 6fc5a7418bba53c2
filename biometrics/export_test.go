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
