package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/strictjson"
	"github.com/zerorealm/zerorealm/twin"
)

// The journal is the gateway's record of the grants it acted on, by
// command: so that a command is carried out at most once, whichever node
// sends it and however often, and so that a realm node that lost the
// answer it was given can ask for it again (a status query). It is the
// gateway's own, a local file beside the actuator rather than a bucket in
// NATS: the record that decides whether an actuator moves stays with the
// enforcement point that moves it, needs no JetStream permissions that
// would let the gateway (or anyone who takes its credentials) write
// records the realm reads, and holds while the link to the realm is down.
//
// Each grant's begin is written and synced before the driver is called
// and its outcome after, so a gateway that stops in between finds the
// begin without an outcome when it starts again: the driver may or may not
// have acted, so the command counts as carried out and failed, with a
// signed acknowledgement saying so, and is never carried out again.
// Refusals of verified grants are recorded too (for status queries), but
// not synced: a refusal moved nothing, so losing one costs nothing.
// Grants in flight together share their syncs (group commit, commit.go).

// Defaults of JournalConfig.
const (
	// DefaultJournalRetention outlasts the realm's Idempotency-Keys (10
	// minutes): a realm node asks about a command only while its key lives.
	DefaultJournalRetention = 15 * time.Minute
	// DefaultJournalEntries bounds the journal: a few hundred bytes each.
	DefaultJournalEntries = 1 << 17
	// maxJournalLine bounds one line of the journal file.
	maxJournalLine = 16 << 10
)

// ErrJournal reports a journal that cannot be read or written.
var ErrJournal = errors.New("gateway: journal")

// JournalConfig configures a Journal.
type JournalConfig struct {
	// Path is the journal file; created if missing. Empty: the journal
	// lives in memory only and starts empty at each start (a simulated
	// gateway, whose actuators do not outlive the process either).
	Path string
	// Retention is how long a command is remembered after it began;
	// default DefaultJournalRetention.
	Retention time.Duration
	// MaxEntries bounds the commands remembered; default
	// DefaultJournalEntries. Past it, the oldest whose grant has expired
	// are forgotten early, and the journal's horizon moves past them.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// journalEntry is what the journal knows of one command: the last grant
// of it the gateway verified.
type journalEntry struct {
	begin beginRecord
	// ack is the grant's signed acknowledgement; nil while the driver runs.
	ack *twin.SignedAck
	// own holds the acknowledgement ack points at when the gateway records
	// one as it answers (setAck): the entry and its ack are then one
	// allocation, on every command's path.
	own twin.SignedAck
}

// setAck records the entry's acknowledgement. Callers hold the journal's
// lock, or own the entry alone.
func (e *journalEntry) setAck(ack *twin.SignedAck) {
	e.own = *ack
	e.ack = &e.own
}

func (e *journalEntry) executed() bool {
	return e.ack != nil && (e.ack.Ack.Result == twin.ResultDone || e.ack.Ack.Result == twin.ResultFailed)
}

// beginRecord is a grant the gateway began to act on (or refused).
type beginRecord struct {
	Twin      string      `json:"twin"`
	Actuator  string      `json:"actuator"`
	Command   common.Hash `json:"command"`
	Nonce     uint64      `json:"nonce"`
	Grant     common.Hash `json:"grant"` // the grant's EIP-712 digest
	NotBefore uint64      `json:"notBefore"`
	Expiry    uint64      `json:"expiry"`
	At        uint64      `json:"at"`
}

// endRecord is the outcome of a grant.
type endRecord struct {
	Command common.Hash     `json:"command"`
	Nonce   uint64          `json:"nonce"`
	Ack     json.RawMessage `json:"ack"`
}

// journalLine is one line of the file: exactly one of its fields.
type journalLine struct {
	Since *uint64      `json:"since,omitempty"`
	Begin *beginRecord `json:"begin,omitempty"`
	End   *endRecord   `json:"end,omitempty"`
}

type orderItem struct {
	command common.Hash
	at      uint64
}

// Journal records the commands a gateway acted on. It is safe for
// concurrent use.
type Journal struct {
	cfg JournalConfig

	mu      sync.Mutex
	entries map[common.Hash]*journalEntry
	order   []orderItem // by begin, oldest first; stale items are skipped
	since   uint64      // every grant begun at or after since is here

	// The file and its group commit (commit.go). Lock order: mu, then
	// commitMu. While writing is set, only the leader uses file and lines.
	commitMu sync.Mutex
	file     *os.File
	lines    int    // lines in the file, for compaction
	queued   *batch // records waiting for the next write
	writing  bool   // a leader writes a batch, or compacts
	broken   error  // set by a failed write, sync or compaction, or by Close
	idle     *sync.Cond
	syncs    atomic.Uint64
	syncFile func(*os.File) error
}

// OpenJournal opens (or creates) the journal. signer signs the failed
// acknowledgement of a grant whose outcome a stop interrupted.
func OpenJournal(cfg JournalConfig, signer *twin.Signer) (*Journal, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultJournalRetention
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultJournalEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	j := &Journal{cfg: cfg, entries: map[common.Hash]*journalEntry{}, syncFile: (*os.File).Sync}
	j.idle = sync.NewCond(&j.commitMu)
	now := twin.Millis(cfg.Now())
	if cfg.Path == "" {
		j.since = now
		return j, nil
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: a journal file needs the gateway's key", ErrJournal)
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: open: %w", ErrJournal, err)
	}
	j.file = f
	data, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err == nil {
		err = j.load(data)
	}
	if err == nil {
		j.finishInterrupted(signer)
		// Rewritten at once: drops what expired while the gateway was
		// down, and a torn last line.
		j.mu.Lock()
		data, n := j.snapshotLocked()
		j.mu.Unlock()
		err = j.replaceFile(data, n)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// JournalCommand is what a journal file says of one command: the last
// grant of it the gateway verified, and that grant's acknowledgement (nil
// when the gateway stopped while the driver ran: it may have moved).
type JournalCommand struct {
	Nonce uint64
	// Grant is the grant's EIP-712 digest.
	Grant common.Hash
	// Begun is when the gateway began on it, Unix milliseconds.
	Begun uint64
	Ack   *twin.SignedAck
}

// CarriedOut reports whether the driver was called for the command: its
// grant was done or failed, or a stop interrupted it.
func (c JournalCommand) CarriedOut() bool {
	return c.Ack == nil || c.Ack.Ack.Result == twin.ResultDone || c.Ack.Ack.Result == twin.ResultFailed
}

// ReadJournal parses a journal file's contents, for a caller that checks
// what a gateway carried out (a test, a checker): every command it holds,
// and its horizon.
func ReadJournal(data []byte) (commands map[common.Hash]JournalCommand, since uint64, err error) {
	j := &Journal{cfg: JournalConfig{Retention: 1<<62 - 1, MaxEntries: 1 << 62, Now: time.Now}, entries: map[common.Hash]*journalEntry{}}
	if err := j.load(data); err != nil {
		return nil, 0, err
	}
	commands = make(map[common.Hash]JournalCommand, len(j.entries))
	for c, e := range j.entries {
		commands[c] = JournalCommand{Nonce: e.begin.Nonce, Grant: e.begin.Grant, Begun: e.begin.At, Ack: e.ack}
	}
	return commands, j.since, nil
}

// load replays the file. A last line without its newline was torn by a
// stop during the write and is ignored (compact drops it); anything else
// that does not parse is a journal this gateway cannot trust, and an
// error.
func (j *Journal) load(data []byte) error {
	if len(data) == 0 {
		j.since = twin.Millis(j.cfg.Now())
		return nil
	}
	for n := 1; len(data) > 0; n++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // torn
		}
		line := data[:i]
		data = data[i+1:]
		if len(line) > maxJournalLine {
			return fmt.Errorf("%w: line %d is %d bytes", ErrJournal, n, len(line))
		}
		var l journalLine
		if err := strictjson.Check(line); err != nil {
			return fmt.Errorf("%w: line %d: %w", ErrJournal, n, err)
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil || dec.More() {
			return fmt.Errorf("%w: line %d is not a journal record", ErrJournal, n)
		}
		switch {
		case n == 1 && l.Since != nil && l.Begin == nil && l.End == nil:
			j.since = *l.Since
		case n == 1:
			return fmt.Errorf("%w: line 1 is not the journal's header", ErrJournal)
		case l.Since == nil && l.Begin != nil && l.End == nil:
			b := *l.Begin
			if !twin.ValidID(b.Twin) || !twin.ValidID(b.Actuator) {
				return fmt.Errorf("%w: line %d names no valid twin and actuator", ErrJournal, n)
			}
			if e, ok := j.entries[b.Command]; ok && e.executed() {
				return fmt.Errorf("%w: line %d begins command %s again after it was carried out", ErrJournal, n, b.Command.Hex())
			}
			j.entries[b.Command] = &journalEntry{begin: b}
			j.order = append(j.order, orderItem{b.Command, b.At})
		case l.Since == nil && l.Begin == nil && l.End != nil:
			e, ok := j.entries[l.End.Command]
			// The same outcome may be written twice around a compaction.
			if !ok || e.begin.Nonce != l.End.Nonce {
				return fmt.Errorf("%w: line %d ends a grant that did not begin", ErrJournal, n)
			}
			sa, err := twin.DecodeSignedAck(l.End.Ack)
			if err != nil {
				return fmt.Errorf("%w: line %d: %w", ErrJournal, n, err)
			}
			if sa.Ack.Command != e.begin.Command || sa.Ack.Nonce != e.begin.Nonce {
				return fmt.Errorf("%w: line %d acknowledges another grant", ErrJournal, n)
			}
			e.ack = &sa
		default:
			return fmt.Errorf("%w: line %d is not one journal record", ErrJournal, n)
		}
		j.lines = n
	}
	if j.lines == 0 {
		j.since = twin.Millis(j.cfg.Now())
	}
	return nil
}

// finishInterrupted acknowledges, as failed, every grant whose driver
// call a stop interrupted: whether it moved anything is unknown, so it is
// never carried out again.
func (j *Journal) finishInterrupted(signer *twin.Signer) {
	for _, e := range j.entries {
		if e.ack != nil {
			continue
		}
		sa := signer.SignAck(twin.Ack{Twin: e.begin.Twin, Actuator: e.begin.Actuator, Command: e.begin.Command, Nonce: e.begin.Nonce,
			Result: twin.ResultFailed, Reason: twin.ReasonDriverFailed,
			Detail: "the gateway stopped while carrying the grant out; whether the actuator moved is unknown", At: twin.Millis(j.cfg.Now())})
		e.ack = &sa
	}
}

func writeLine(buf *bytes.Buffer, l journalLine) {
	b, _ := json.Marshal(l)
	buf.Write(b)
	buf.WriteByte('\n')
}

// onDisk reports whether the journal has a file: one in memory only
// (a simulated gateway's) builds none of the lines it would not write.
func (j *Journal) onDisk() bool { return j.cfg.Path != "" }

// Executed is the acknowledgement of command if a grant of it was carried
// out.
func (j *Journal) Executed(command common.Hash) (twin.SignedAck, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e, ok := j.entries[command]; ok && e.executed() {
		return *e.ack, true
	}
	return twin.SignedAck{}, false
}

// Since is the journal's horizon: it holds every grant begun at or after
// it (Unix milliseconds).
func (j *Journal) Since() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.since
}

// beginOutcome is what begin found.
type beginOutcome int

const (
	beginNew      beginOutcome = iota // recorded: carry it out
	beginExecuted                     // carried out before: answer the ack
	beginBusy                         // another grant of it is running
	beginExpired                      // the grant expired meanwhile
)

// begin records that the gateway is about to act on gr, synced, unless a
// grant of the same command was carried out (its ack is returned) or is
// running. The grant's expiry is checked again under the journal's lock,
// so that a status query that found nothing for an expired grant stays
// true: no grant of it can begin afterwards.
func (j *Journal) begin(gr *twin.Grant, digest common.Hash, now time.Time, skew time.Duration) (beginOutcome, twin.SignedAck, error) {
	b := beginRecord{Twin: gr.Twin, Actuator: gr.Actuator, Command: gr.Command, Nonce: gr.Nonce, Grant: digest,
		NotBefore: gr.NotBefore, Expiry: gr.Expiry, At: twin.Millis(now)}
	j.mu.Lock()
	if e, ok := j.entries[gr.Command]; ok {
		switch {
		case e.executed():
			ack := *e.ack
			j.mu.Unlock()
			return beginExecuted, ack, nil
		case e.ack == nil:
			j.mu.Unlock()
			return beginBusy, twin.SignedAck{}, nil
		}
	}
	if now.Add(-skew).After(twin.FromMillis(gr.Expiry)) {
		j.mu.Unlock()
		return beginExpired, twin.SignedAck{}, nil
	}
	j.pruneLocked(now)
	e := &journalEntry{begin: b}
	j.entries[gr.Command] = e
	j.order = append(j.order, orderItem{gr.Command, b.At})
	// A journal in memory builds no line. The entry's begin never changes
	// once made: the line reads it there rather than from a copy of its own.
	var queued *batch
	var err error
	if j.onDisk() {
		queued, err = j.queueLocked(true, journalLine{Begin: &e.begin})
	}
	j.mu.Unlock()
	if err == nil {
		err = j.await(queued)
	}
	if err != nil {
		j.mu.Lock()
		if j.entries[gr.Command] == e {
			delete(j.entries, gr.Command)
		}
		j.mu.Unlock()
		return beginNew, twin.SignedAck{}, err
	}
	return beginNew, twin.SignedAck{}, nil
}

// end records a begun grant's acknowledgement, synced.
func (j *Journal) end(gr *twin.Grant, ack twin.SignedAck) error {
	j.mu.Lock()
	if e, ok := j.entries[gr.Command]; ok && e.begin.Nonce == gr.Nonce {
		e.setAck(&ack)
	}
	if !j.onDisk() {
		j.mu.Unlock()
		return nil
	}
	queued, err := j.queueLocked(true, journalLine{End: &endRecord{Command: gr.Command, Nonce: gr.Nonce, Ack: ack.Encode()}})
	j.mu.Unlock()
	if err != nil {
		return err
	}
	return j.await(queued)
}

// refused records the refusal of a verified grant, unless the command was
// carried out or is running: a status query about this grant then says
// why. Not synced: a refusal moved nothing.
func (j *Journal) refused(gr *twin.Grant, digest common.Hash, now time.Time, ack twin.SignedAck) {
	b := beginRecord{Twin: gr.Twin, Actuator: gr.Actuator, Command: gr.Command, Nonce: gr.Nonce, Grant: digest,
		NotBefore: gr.NotBefore, Expiry: gr.Expiry, At: twin.Millis(now)}
	j.mu.Lock()
	if e, ok := j.entries[gr.Command]; ok && (e.executed() || e.ack == nil) {
		j.mu.Unlock()
		return
	}
	j.pruneLocked(now)
	e := &journalEntry{begin: b}
	e.setAck(&ack)
	j.entries[gr.Command] = e
	j.order = append(j.order, orderItem{gr.Command, b.At})
	if !j.onDisk() {
		j.mu.Unlock()
		return
	}
	queued, err := j.queueLocked(false, journalLine{Begin: &e.begin}, journalLine{End: &endRecord{Command: gr.Command, Nonce: gr.Nonce, Ack: ack.Encode()}})
	j.mu.Unlock()
	if err == nil {
		_ = j.await(queued) // waits for the write only; its error breaks the journal for the next grant
	}
}

// pruneLocked forgets commands begun longer than Retention ago and, past
// MaxEntries, the oldest whose grant has expired; the horizon moves past
// each. A command still running is never forgotten. Callers hold mu.
func (j *Journal) pruneLocked(now time.Time) {
	cutoff := twin.Millis(now.Add(-j.cfg.Retention))
	nowMs := twin.Millis(now)
	for len(j.order) > 0 {
		it := j.order[0]
		e, ok := j.entries[it.command]
		if !ok || e.begin.At != it.at {
			j.order = j.order[1:] // replaced or forgotten already
			continue
		}
		full := len(j.entries) >= j.cfg.MaxEntries
		if e.ack == nil || !(it.at < cutoff || full && e.begin.Expiry < nowMs) {
			break
		}
		delete(j.entries, it.command)
		j.order = j.order[1:]
		if it.at+1 > j.since {
			j.since = it.at + 1
		}
	}
	if cap(j.order) > 1024 && len(j.order) < cap(j.order)/4 {
		j.order = append([]orderItem(nil), j.order...)
	}
}

// status answers a query about one grant from the journal.
func (j *Journal) status(q *twin.StatusQuery, now time.Time, skew time.Duration) (twin.CommandState, *twin.SignedAck, uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[q.Command]
	switch {
	case ok && e.executed():
		ack := *e.ack
		return twin.StateExecuted, &ack, j.since
	case ok && e.ack == nil:
		return twin.StatePending, nil, j.since
	case ok && e.begin.Nonce == q.Nonce:
		ack := *e.ack
		return twin.StateRefused, &ack, j.since
	}
	// Nothing of the command: final only if the journal reaches back to
	// before the grant could first begin here, and it can no longer begin.
	covered := !twin.FromMillis(j.since).After(twin.FromMillis(q.NotBefore).Add(-skew))
	expired := now.Add(-skew).After(twin.FromMillis(q.Expiry))
	if covered && expired {
		return twin.StateNotExecuted, nil, j.since
	}
	return twin.StateUnknown, nil, j.since
}
