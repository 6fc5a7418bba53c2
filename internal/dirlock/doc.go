// Package dirlock gives one process at a time a directory: an exclusive,
// non-blocking flock on a lock file inside it that records the holder's
// process id. The realm holds its data directory's lock for as long as it
// runs, because two processes writing one JetStream file store corrupt it.
package dirlock
