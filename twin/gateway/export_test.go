package gateway

import "os"

// JournalSyncs is how many times j synced its file, for the benchmarks.
func JournalSyncs(j *Journal) uint64 { return j.syncs.Load() }

// SetJournalSync replaces how j syncs its file: a test holds a sync, sees
// what it made durable, or makes it fail as a broken disk would.
func SetJournalSync(j *Journal, sync func(*os.File) error) {
	j.commitMu.Lock()
	defer j.commitMu.Unlock()
	for j.writing {
		j.idle.Wait()
	}
	j.syncFile = sync
}

// JournalQueued is how many records wait for the batch being written.
func JournalQueued(j *Journal) int {
	j.commitMu.Lock()
	defer j.commitMu.Unlock()
	if j.queued == nil {
		return 0
	}
	return j.queued.lines
}
