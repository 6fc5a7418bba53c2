package gateway

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Group commit. A record that must be durable before the gateway goes on
// (a grant's begin before its driver runs, its outcome after) waits for a
// sync of the file, and a sync costs the same for one record as for
// many: so records are queued in batches, and one writer at a time (the
// leader, one of the waiters: no goroutine of the journal's own) writes a
// whole batch and syncs it once. Records that arrive meanwhile join the
// next batch, whose waiters are released together by the next sync; the
// leader that finishes hands the next batch to one of its waiters.
//
// Records are queued under the journal's lock, in the same step as the
// change to memory they record, so the file's order is the order in which
// the journal changed. A waiter returns only once its batch is written
// and, if any record in it asked for one, synced. A write, a sync or a
// compaction that fails fails every waiter of its batch, and the journal
// then refuses every record after it: after a failed fsync the kernel may
// have dropped the pages it could not write while reporting later syncs
// as good, so nothing more written to this file can be trusted to be on
// disk. A gateway whose journal broke refuses grants (journal_failed)
// until it is restarted and the file is read again.

// errJournalClosed is what a record queued after Close gets.
var errJournalClosed = fmt.Errorf("%w: closed", ErrJournal)

// batch is records written to the file together, and what their waiters
// wait on.
type batch struct {
	buf   bytes.Buffer
	lines int
	sync  bool          // a record in it must be durable before its waiter goes on
	done  chan struct{} // closed once written (and synced), or failed
	lead  chan struct{} // one token: no batch is being written, write this one
	err   error         // set before done is closed
}

// queueLocked queues lines for the file. Callers hold mu, so that the
// file's order is that of the changes to memory, and then wait for the
// batch with await after releasing it. A journal in memory has no batch.
func (j *Journal) queueLocked(sync bool, lines ...journalLine) (*batch, error) {
	if j.cfg.Path == "" {
		return nil, nil
	}
	j.commitMu.Lock()
	defer j.commitMu.Unlock()
	if j.broken != nil {
		return nil, j.broken
	}
	b := j.queued
	if b == nil {
		b = &batch{done: make(chan struct{}), lead: make(chan struct{}, 1)}
		j.queued = b
		if !j.writing {
			j.writing = true
			b.lead <- struct{}{}
		}
	}
	for _, l := range lines {
		writeLine(&b.buf, l)
	}
	b.lines += len(lines)
	b.sync = b.sync || sync
	return b, nil
}

// await returns once b is on disk, or failed: it writes b itself when b's
// turn comes and no other waiter of b took it first.
func (j *Journal) await(b *batch) error {
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
		return b.err
	case <-b.lead:
	}
	j.commitMu.Lock()
	j.queued = nil // b: the batch queued when the token was given, which records since joined
	f := j.file
	j.commitMu.Unlock()

	_, err := f.Write(b.buf.Bytes())
	if err == nil && b.sync {
		j.syncs.Add(1)
		err = j.syncFile(f)
	}
	j.lines += b.lines
	if err != nil {
		err = fmt.Errorf("%w: write: %w", ErrJournal, err)
	}
	j.finish(b, err)
	if err == nil && j.tooLong() {
		j.compactLeading()
	}
	j.handOff()
	return err
}

// finish releases the waiters of b with err; an error breaks the journal.
func (j *Journal) finish(b *batch, err error) {
	if b == nil {
		return
	}
	if err != nil {
		j.commitMu.Lock()
		if j.broken == nil {
			j.broken = fmt.Errorf("%w (earlier: the journal records nothing more until the gateway restarts and reads its file again)", err)
		}
		j.commitMu.Unlock()
	}
	b.err = err
	close(b.done)
}

// handOff gives the next batch, if any, to one of its waiters to write;
// a broken journal fails it instead.
func (j *Journal) handOff() {
	j.commitMu.Lock()
	defer j.commitMu.Unlock()
	next := j.queued
	switch {
	case next == nil:
		j.writing = false
		j.idle.Broadcast()
	case j.broken != nil:
		j.queued, j.writing = nil, false
		next.err = j.broken
		close(next.done)
		j.idle.Broadcast()
	default:
		next.lead <- struct{}{}
	}
}

// tooLong reports whether the file holds four times what the journal
// remembers (and more than a few thousand lines): time to compact it.
// Only the leader calls it.
func (j *Journal) tooLong() bool {
	j.mu.Lock()
	live := len(j.entries)
	j.mu.Unlock()
	return j.lines > 4*live+4096
}

// compactLeading rewrites the file while this goroutine leads. Records
// queued by then are in memory, so in the snapshot: their batch is done
// when the new file is. Records queued after it go to the new file.
func (j *Journal) compactLeading() {
	j.mu.Lock()
	data, n := j.snapshotLocked()
	j.commitMu.Lock()
	pending := j.queued
	j.queued = nil
	j.commitMu.Unlock()
	j.mu.Unlock()
	j.finish(pending, j.replaceFile(data, n))
}

// snapshotLocked is the file that holds what the journal remembers now,
// after forgetting what it may. Callers hold mu.
func (j *Journal) snapshotLocked() ([]byte, int) {
	j.pruneLocked(j.cfg.Now())
	var buf bytes.Buffer
	since := j.since
	writeLine(&buf, journalLine{Since: &since})
	n := 1
	for _, it := range j.order {
		e, ok := j.entries[it.command]
		if !ok || e.begin.At != it.at {
			continue
		}
		b := e.begin
		writeLine(&buf, journalLine{Begin: &b})
		n++
		if e.ack != nil {
			writeLine(&buf, journalLine{End: &endRecord{Command: b.Command, Nonce: b.Nonce, Ack: e.ack.Encode()}})
			n++
		}
	}
	return buf.Bytes(), n
}

// replaceFile writes data (n lines) to a temporary file, syncs it, and
// renames it over the journal's file, then syncs the folder: the old file
// or the new one is the journal at every moment. Only the leader (or
// OpenJournal, before anyone else can) calls it.
func (j *Journal) replaceFile(data []byte, n int) error {
	tmp := j.cfg.Path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("%w: compact: %w", ErrJournal, err)
	}
	if _, err = f.Write(data); err == nil {
		j.syncs.Add(1)
		err = j.syncFile(f)
	}
	if err == nil {
		err = os.Rename(tmp, j.cfg.Path)
	}
	if err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: compact: %w", ErrJournal, err)
	}
	syncDir(filepath.Dir(j.cfg.Path))
	j.commitMu.Lock()
	old := j.file
	j.file, j.lines = f, n
	j.commitMu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Close waits for the batch being written, fails those queued after it,
// and closes the file. Nothing is recorded after it: what is not on disk
// must not be acted on.
func (j *Journal) Close() error {
	if j.cfg.Path == "" {
		return nil
	}
	j.commitMu.Lock()
	if j.broken == nil {
		j.broken = errJournalClosed
	}
	for j.writing {
		j.idle.Wait()
	}
	f := j.file
	j.file = nil
	j.commitMu.Unlock()
	if f == nil {
		return nil
	}
	return f.Close()
}
