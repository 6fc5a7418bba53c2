package gateway

// JournalSyncs is how many times j synced its file, for the benchmarks.
func JournalSyncs(j *Journal) uint64 { return j.syncs.Load() }
