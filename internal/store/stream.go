package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const defaultDuplicateWindow = 2 * time.Minute

// StreamConfig declares a stream. Names and subjects are relative: the
// store adds its prefix.
type StreamConfig struct {
	// Name, e.g. "AUDIT", becomes "<PREFIX>_AUDIT".
	Name string
	// Subjects, e.g. "audit.>", become "<prefix>.audit.>".
	Subjects []string
	// MaxAge drops messages older than this. 0 keeps them forever.
	MaxAge time.Duration
	// MaxMsgsPerSubject keeps only the newest messages per subject. 0 keeps all.
	MaxMsgsPerSubject int64
	// DuplicateWindow is how long a Nats-Msg-Id is remembered for
	// deduplication, and so how long an append with WithMsgID can be
	// retried safely. Default 2m (capped at MaxAge).
	DuplicateWindow time.Duration
	// AllowAtomic enables AppendAtomic (atomic multi-subject batches).
	AllowAtomic bool
	// Sealed authenticates every message with the store's record key (a
	// SealHeader over the stream, subject, message id and data): a message
	// that does not verify reads as absent (ErrNotFound and ErrTampered),
	// Follow skips it, and both report it through Config.OnTamper.
	Sealed bool
}

// Stream is a handle on one stream. It is safe for concurrent use.
type Stream struct {
	store    *Store
	name     string
	subjects []string // absolute
	js       jetstream.Stream
	// ackPrefix is how a publish acknowledgement from this stream starts.
	ackPrefix []byte
	rel       string  // name without the prefix, bound by seals
	seal      *sealer // nil: not sealed
	// trimmed: limits drop old messages, so a follower may see a
	// subject's history start after its first message.
	trimmed bool
}

// Stream creates the stream or reuses an existing one, so every node can
// declare what it needs at start-up. A changed configuration is applied with
// an update when JetStream allows it; when it does not (storage type, or a
// replica count the cluster cannot place) the error names the stream, what
// differs and how to fix it. Every stream uses file storage, direct gets
// and the store's replica count.
//
// A declaration that meets a cluster still settling (no leader yet, or
// peers not yet known to the meta leader) is retried within ctx's
// deadline (the store's timeout when ctx has none); see retryDeclare.
func (s *Store) Stream(ctx context.Context, cfg StreamConfig) (*Stream, error) {
	want, err := s.streamConfig(cfg)
	if err != nil {
		return nil, err
	}
	seal, err := s.sealerFor(cfg.Sealed, "stream "+cfg.Name)
	if err != nil {
		return nil, err
	}
	newStream := func(js jetstream.Stream) *Stream {
		s.declare(want.Name)
		return &Stream{store: s, name: want.Name, subjects: want.Subjects, js: js,
			ackPrefix: []byte(`{"stream":"` + want.Name + `","seq":`), rel: cfg.Name, seal: seal,
			trimmed: cfg.MaxAge > 0 || cfg.MaxMsgsPerSubject > 0}
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var st *Stream
	err = s.retryDeclare(ctx, "stream "+want.Name, func() error {
		var err error
		st, err = s.declareStream(ctx, want, newStream)
		return err
	})
	return st, err
}

// declareStream creates, reuses or updates the stream once; newStream
// makes the handle.
func (s *Store) declareStream(ctx context.Context, want jetstream.StreamConfig, newStream func(jetstream.Stream) *Stream) (*Stream, error) {
	js, err := s.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		js, err = s.js.CreateStream(ctx, want)
		if err == nil {
			s.log.Info("stream created", "stream", want.Name, "subjects", want.Subjects, "replicas", want.Replicas)
			return newStream(js), nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("store: create stream %s: %w", want.Name, classify(err))
		}
		// Another node created it between our lookup and create.
		js, err = s.js.Stream(ctx, want.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: look up stream %s: %w", want.Name, classify(err))
	}

	have := js.CachedInfo().Config
	diffs := streamDiffs(have, want)
	if len(diffs) == 0 {
		return newStream(js), nil
	}
	if have.Storage != want.Storage {
		return nil, fmt.Errorf("store: stream %s differs (%s): the storage type cannot change in place; back the stream up, delete it and start again to recreate it from the backup, or restore the old storage type",
			want.Name, strings.Join(diffs, "; "))
	}
	update := have
	update.Subjects = want.Subjects
	update.Replicas = want.Replicas
	update.MaxAge = want.MaxAge
	update.MaxMsgsPerSubject = want.MaxMsgsPerSubject
	update.Duplicates = want.Duplicates
	update.AllowDirect = want.AllowDirect
	update.AllowAtomicPublish = want.AllowAtomicPublish
	if _, err := s.js.UpdateStream(ctx, update); err != nil {
		return nil, fmt.Errorf("store: stream %s differs (%s) and JetStream refused the update: %w; change the configuration back, or migrate the data to a new stream name",
			want.Name, strings.Join(diffs, "; "), classify(err))
	}
	// The handle caches the stream's configuration, and direct gets are
	// only used when the cached configuration allows them: fetch it anew.
	js, err = s.js.Stream(ctx, want.Name)
	if err != nil {
		return nil, fmt.Errorf("store: look up stream %s after update: %w", want.Name, classify(err))
	}
	s.log.Info("stream updated", "stream", want.Name, "changes", diffs)
	return newStream(js), nil
}

func (s *Store) streamConfig(cfg StreamConfig) (jetstream.StreamConfig, error) {
	if err := validateName("stream name", cfg.Name); err != nil {
		return jetstream.StreamConfig{}, err
	}
	if len(cfg.Subjects) == 0 {
		return jetstream.StreamConfig{}, fmt.Errorf("%w: stream %s has no subjects", ErrInvalid, cfg.Name)
	}
	subjects := make([]string, len(cfg.Subjects))
	for i, subj := range cfg.Subjects {
		if err := validateFilter(subj); err != nil {
			return jetstream.StreamConfig{}, fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
		subjects[i] = s.subject(subj)
	}
	if cfg.MaxAge < 0 || cfg.MaxMsgsPerSubject < 0 || cfg.DuplicateWindow < 0 {
		return jetstream.StreamConfig{}, fmt.Errorf("%w: stream %s has a negative limit", ErrInvalid, cfg.Name)
	}
	dup := cfg.DuplicateWindow
	if dup == 0 {
		dup = defaultDuplicateWindow
		if cfg.MaxAge > 0 && cfg.MaxAge < dup {
			dup = cfg.MaxAge
		}
	}
	if cfg.MaxAge > 0 && dup > cfg.MaxAge {
		return jetstream.StreamConfig{}, fmt.Errorf("%w: stream %s duplicate window %v exceeds max age %v", ErrInvalid, cfg.Name, dup, cfg.MaxAge)
	}
	perSubject := cfg.MaxMsgsPerSubject
	if perSubject == 0 {
		perSubject = -1 // the server's spelling of unlimited
	}
	return jetstream.StreamConfig{
		Name:               s.resourceName(cfg.Name),
		Subjects:           subjects,
		Storage:            jetstream.FileStorage,
		Replicas:           s.replicas,
		MaxAge:             cfg.MaxAge,
		MaxMsgsPerSubject:  perSubject,
		Duplicates:         dup,
		AllowDirect:        true,
		AllowAtomicPublish: cfg.AllowAtomic,
	}, nil
}

// streamDiffs lists, readably, the settings the store manages that differ
// between the existing stream and the wanted one.
func streamDiffs(have, want jetstream.StreamConfig) []string {
	var diffs []string
	add := func(field string, h, w any) {
		diffs = append(diffs, fmt.Sprintf("%s is %v, want %v", field, h, w))
	}
	if !slices.Equal(sortedCopy(have.Subjects), sortedCopy(want.Subjects)) {
		add("subjects", have.Subjects, want.Subjects)
	}
	if have.Storage != want.Storage {
		add("storage", have.Storage, want.Storage)
	}
	if have.Replicas != want.Replicas {
		add("replicas", have.Replicas, want.Replicas)
	}
	if have.MaxAge != want.MaxAge {
		add("max age", have.MaxAge, want.MaxAge)
	}
	if normUnlimited(have.MaxMsgsPerSubject) != normUnlimited(want.MaxMsgsPerSubject) {
		add("max messages per subject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	}
	if have.Duplicates != want.Duplicates {
		add("duplicate window", have.Duplicates, want.Duplicates)
	}
	if have.AllowDirect != want.AllowDirect {
		add("direct get", have.AllowDirect, want.AllowDirect)
	}
	if have.AllowAtomicPublish != want.AllowAtomicPublish {
		add("atomic publish", have.AllowAtomicPublish, want.AllowAtomicPublish)
	}
	return diffs
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func normUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// Name is the stream's full JetStream name.
func (st *Stream) Name() string { return st.name }

// Msg is a stored message.
type Msg struct {
	Subject string // relative (prefix stripped)
	Seq     uint64 // stream sequence
	Data    []byte
	Header  nats.Header
	Time    time.Time
}

// AppendOption is a per-append knob.
type AppendOption func(*appendOptions) error

type appendOptions struct {
	msgID  string
	header nats.Header
}

// WithMsgID makes the append idempotent within the stream's duplicate
// window: the server stores one message per id, and a lost ack may be
// retried. Use an id derived from the content's identity (e.g. a hash).
func WithMsgID(id string) AppendOption {
	return func(o *appendOptions) error {
		// No 0 byte either: seals join the id with other names by 0 bytes.
		if id == "" || len(id) > maxSubjectLen || strings.ContainsAny(id, "\r\n\x00") {
			return fmt.Errorf("%w: message id must be 1..%d bytes without line breaks or 0 bytes", ErrInvalid, maxSubjectLen)
		}
		o.msgID = id
		return nil
	}
}

// WithHeader adds a header to the appended message. Headers starting with
// "Nats-" are the server's and are refused.
func WithHeader(key, value string) AppendOption {
	return func(o *appendOptions) error {
		if key == "" || strings.ContainsAny(key, ": \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return fmt.Errorf("%w: header %q", ErrInvalid, key)
		}
		if strings.HasPrefix(strings.ToLower(key), "nats-") {
			return fmt.Errorf("%w: header %q is reserved for the server", ErrInvalid, key)
		}
		if strings.EqualFold(key, SealHeader) {
			return fmt.Errorf("%w: header %q is the store's own", ErrInvalid, key)
		}
		if o.header == nil {
			o.header = nats.Header{}
		}
		o.header.Add(key, value)
		return nil
	}
}

// maxAppendAttempts bounds retries of an idempotent append whose ack was
// lost: enough to ride out a leader election, few enough to fail promptly.
const maxAppendAttempts = 3

// AppendIfLast appends data to subject only if the subject's last message
// has stream sequence lastSeq (0: the subject must have no message yet),
// and returns the new sequence. A failed expectation is ErrConflict.
//
// With WithMsgID, an append whose ack is lost (timeout, or no responders
// during a leader change) is retried with the same id; if the retry then
// conflicts, the subject's last message is read back and, when it carries
// our id, it was our write and its sequence is returned. A repeat after
// another write has overtaken ours is ErrConflict on a single replica (the
// server checks the expectation first); on a replicated stream the server's
// deduplication answers first and returns our original sequence. Either way
// nothing is stored twice.
func (st *Stream) AppendIfLast(ctx context.Context, subject string, data []byte, lastSeq uint64, opts ...AppendOption) (uint64, error) {
	return st.append(ctx, subject, data, &lastSeq, opts)
}

// Append appends data to subject with no expectation on what came before.
// WithMsgID still deduplicates and makes a lost ack retryable.
func (st *Stream) Append(ctx context.Context, subject string, data []byte, opts ...AppendOption) (uint64, error) {
	return st.append(ctx, subject, data, nil, opts)
}

func (st *Stream) append(ctx context.Context, subject string, data []byte, lastSeq *uint64, opts []AppendOption) (uint64, error) {
	var o appendOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return 0, err
		}
	}
	if err := st.checkPublishSubject(subject); err != nil {
		return 0, err
	}
	if limit := st.store.nc.MaxPayload(); limit > 0 && int64(len(data)) > limit {
		return 0, fmt.Errorf("%w: %d bytes exceed the server's max payload %d", ErrInvalid, len(data), limit)
	}
	// One deadline for the whole append; each attempt gets its share of
	// what is left of it (see attemptDeadline).
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(st.store.timeout)
	}

	full := st.store.subject(subject)
	var expectLast string
	if lastSeq != nil {
		expectLast = strconv.FormatUint(*lastSeq, 10)
	}
	// Only an error needs the description: build it then.
	what := func() string {
		if lastSeq != nil {
			return fmt.Sprintf("store: append to %s on %s expecting last sequence %d", subject, st.name, *lastSeq)
		}
		return fmt.Sprintf("store: append to %s on %s", subject, st.name)
	}

	if err := st.store.admitWrite(what); err != nil {
		return 0, err
	}
	var seal string
	if st.seal != nil {
		seal = st.seal.sealMsg(st.rel, subject, o.msgID, expectLast, data)
	}
	attempts := 1
	if o.msgID != "" {
		attempts = maxAppendAttempts
	}
	var lastErr error
	for attempt := 1; attempt <= attempts; attempt++ {
		msg := &nats.Msg{Subject: full, Data: data, Header: publishHeader(o.header, st.name, expectLast, o.msgID, seal)}
		seq, err := st.publishRidingBusy(ctx, attemptDeadline(ctx, deadline, attempts-attempt+1), msg, lastSeq != nil)
		switch {
		case err == nil:
			return seq, nil
		case isConflictCode(err):
			if o.msgID != "" {
				// Our own earlier write (an ack lost, or a caller retrying)
				// makes the expectation stale; the id tells it apart.
				rctx, rcancel := context.WithDeadline(ctx, deadline)
				seq, ok, rerr := st.ownLastWrite(rctx, subject, o.msgID)
				rcancel()
				if ok {
					return seq, nil
				}
				if rerr != nil {
					// Whether the subject moved on by our own earlier
					// attempt cannot be told now: calling it a conflict
					// would have the caller lay its write out anew after
					// what may be that very write.
					if !errors.Is(rerr, ErrUnavailable) {
						rerr = fmt.Errorf("%w: %w", ErrUnavailable, rerr)
					}
					return 0, fmt.Errorf("%s: expectation failed, and reading back whether by our own write failed: %w", what(), rerr)
				}
			}
			return 0, conflict(what(), err)
		case attempt < attempts && ctx.Err() == nil && time.Now().Before(deadline) && ackLost(err):
			st.store.log.Warn("append ack lost, retrying with the same message id",
				"stream", st.name, "subject", subject, "msg_id", o.msgID, "attempt", attempt, "err", err)
			lastErr = err
			continue
		default:
			return 0, fmt.Errorf("%s: %w", what(), classify(err))
		}
	}
	return 0, fmt.Errorf("%s: %w", what(), classify(lastErr))
}

// publishRidingBusy publishes msg and, for an expectation check, repeats it
// while the stream answers that the subject is busy (see rideBusy).
func (st *Stream) publishRidingBusy(ctx context.Context, deadline time.Time, msg *nats.Msg, expecting bool) (uint64, error) {
	if !expecting {
		return st.publish(ctx, deadline, msg)
	}
	return rideBusy(ctx, deadline, func() (uint64, error) { return st.publish(ctx, deadline, msg) })
}

// attemptDeadline splits what is left of the append's deadline evenly over
// the attempts still allowed, so a lost ack leaves time for a retry.
func attemptDeadline(ctx context.Context, deadline time.Time, attemptsLeft int) time.Time {
	if attemptsLeft > 1 {
		deadline = time.Now().Add(time.Until(deadline) / time.Duration(attemptsLeft))
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		return d
	}
	return deadline
}

// ackLost reports errors after which the message may or may not have been
// stored: only a retry with the same message id can settle it.
func ackLost(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}

// ownLastWrite reports whether the subject's last message carries msgID,
// and fails when the last message cannot be read (not when there is none).
func (st *Stream) ownLastWrite(ctx context.Context, subject, msgID string) (uint64, bool, error) {
	// From the leader: a lagging replica would not show our own write.
	last, err := st.GetLast(ctx, subject, FromLeader())
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if last.Header.Get(jetstream.MsgIDHeader) != msgID {
		return 0, false, nil
	}
	return last.Seq, true, nil
}

func (st *Stream) checkPublishSubject(subject string) error {
	if err := validateSubject(subject); err != nil {
		return err
	}
	full := st.store.subject(subject)
	for _, f := range st.subjects {
		if subjectMatches(f, full) {
			return nil
		}
	}
	return fmt.Errorf("%w: subject %q is not captured by stream %s", ErrInvalid, subject, st.name)
}

func cloneHeader(h nats.Header) nats.Header {
	if h == nil {
		return nil
	}
	c := make(nats.Header, len(h))
	for k, v := range h {
		c[k] = slices.Clone(v)
	}
	return c
}

// GetLast returns the last message on subject (a direct get), or ErrNotFound.
//
// By default it is a direct get, answered by the nearest replica; with
// FromLeader it sees every acknowledged write (see leader.go).
func (st *Stream) GetLast(ctx context.Context, subject string, opts ...ReadOption) (Msg, error) {
	if err := st.checkPublishSubject(subject); err != nil {
		return Msg{}, err
	}
	full := st.store.subject(subject)
	raw, err := st.read(ctx, opts,
		func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
			return st.store.lastFromLeader(ctx, st.name, full)
		},
		func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
			return st.js.GetLastMsgForSubject(ctx, full)
		})
	if err != nil {
		return Msg{}, fmt.Errorf("store: last message on %s in %s: %w", subject, st.name, err)
	}
	return st.open(raw)
}

// Get returns the message with stream sequence seq, or ErrNotFound: a
// direct get by default, from the leader with FromLeader.
func (st *Stream) Get(ctx context.Context, seq uint64, opts ...ReadOption) (Msg, error) {
	if seq == 0 {
		return Msg{}, fmt.Errorf("%w: sequence 0", ErrInvalid)
	}
	raw, err := st.read(ctx, opts,
		func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
			return st.store.seqFromLeader(ctx, st.name, seq)
		},
		func(ctx context.Context) (*jetstream.RawStreamMsg, error) { return st.js.GetMsg(ctx, seq) })
	if err != nil {
		return Msg{}, fmt.Errorf("store: message %d in %s: %w", seq, st.name, err)
	}
	return st.open(raw)
}

// read gets one message as stored, from the stream's leader with
// FromLeader and by a direct get otherwise. A message that is not there
// is ErrNotFound, any other failure is classified; the caller names the
// message and opens it.
func (st *Stream) read(ctx context.Context, opts []ReadOption, fromLeader, direct func(context.Context) (*jetstream.RawStreamMsg, error)) (*jetstream.RawStreamMsg, error) {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := st.store.withTimeout(ctx)
	defer cancel()
	get := direct
	if o.fromLeader {
		get = fromLeader
	}
	raw, err := get(ctx)
	switch {
	case err == nil:
		return raw, nil
	case errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, ErrNotFound):
		return nil, ErrNotFound
	default:
		return nil, classify(err)
	}
}

// open turns a stored message into a Msg, verifying its seal on a sealed
// stream: one that does not verify is reported and refused as absent.
func (st *Stream) open(raw *jetstream.RawStreamMsg) (Msg, error) {
	m := Msg{
		Subject: st.store.relative(raw.Subject),
		Seq:     raw.Sequence,
		Data:    raw.Data,
		Header:  raw.Header,
		Time:    raw.Time,
	}
	if _, err := st.verify(m); err != nil {
		return Msg{}, err
	}
	return m, nil
}

// verify checks m's seal on a sealed stream and returns the predecessor
// the seal names (see sealMsg); "" on a stream that is not sealed.
func (st *Stream) verify(m Msg) (string, error) {
	if st.seal == nil {
		return "", nil
	}
	last, reason := st.seal.openMsg(st.rel, m.Subject, m.Header.Get(jetstream.MsgIDHeader), m.Header.Get(SealHeader), m.Data)
	if reason == "" {
		return last, nil
	}
	return "", st.tampered(m, reason)
}

// tampered reports m as a record that does not verify.
func (st *Stream) tampered(m Msg, reason string) error {
	return st.store.tamper(fmt.Sprintf("store: message %d on %s in %s", m.Seq, m.Subject, st.name),
		TamperEvent{Stream: st.rel, Key: m.Subject, Revision: m.Seq, Reason: reason})
}
