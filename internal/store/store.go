package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrConflict reports that an optimistic-concurrency expectation did not
	// hold: the subject's last sequence was not the expected one, the key
	// already exists, or the key's revision moved on. The caller re-reads
	// and decides again.
	ErrConflict = errors.New("store: conflict")

	// ErrNotFound reports that there is no message for the subject or
	// sequence, or no live value for the key.
	ErrNotFound = errors.New("store: not found")

	// ErrInvalid reports a name, subject, key or argument that the store
	// refuses before anything is sent to the server.
	ErrInvalid = errors.New("store: invalid argument")

	// ErrInsufficientStorage reports a write refused before it was sent
	// because the disk under the store is (nearly) full (Config.WriteGate).
	// Nothing of that write was stored. It always comes wrapped together
	// with ErrUnavailable: callers that only know "not now" treat it so.
	ErrInsufficientStorage = errors.New("store: insufficient storage")

	// ErrStopped reports that a Follower stopped (Stop, its context ended,
	// or apply failed) before the awaited sequence was applied.
	ErrStopped = errors.New("store: follower stopped")
)

const (
	defaultPrefix  = "zr"
	defaultTimeout = 5 * time.Second
	// defaultClockSkew is generous for clocks kept by NTP, and short
	// against the records it protects (sessions live for hours).
	defaultClockSkew = time.Minute
	maxReplicas      = 5
	// autoReplicasCap is the replica count used on clusters of three or
	// more servers: it survives one node loss without paying for five.
	autoReplicasCap = 3
)

// Config configures a Store. Zero values are the documented defaults.
type Config struct {
	// Prefix namespaces everything the store creates: subjects are
	// "<prefix>.<relative>", streams and buckets "<PREFIX>_<NAME>". Several
	// deployments can then share one NATS account. Default "zr"; letters,
	// digits, '-' and '_' only.
	Prefix string

	// Replicas is the replica count of every stream and bucket. 0 picks
	// min(3, servers in the cluster the connection sees), so the same code
	// runs on an embedded single node (1) and on a cluster (3). 0..5.
	Replicas int

	// Timeout bounds each call whose context has no deadline. Default 5s.
	Timeout time.Duration

	// Logger receives the store's diagnostics. Default: discarded.
	Logger *slog.Logger

	// WaitForJetStream makes New retry, with back-off and a warning that
	// says why, while JetStream is unavailable (a cluster still electing
	// its meta leader answers "JetStream not available" for a moment),
	// until it answers or ctx ends. Without it New fails at once.
	WaitForJetStream bool

	// RecordKey (RecordKeySize bytes) authenticates the values of sealed
	// buckets and the messages of sealed streams (see seal.go). It never
	// enters NATS, and every node of a cluster needs the same one. A store
	// without it refuses to declare a sealed bucket or stream.
	RecordKey []byte

	// OnTamper is told, once per record, of every sealed value or message
	// that did not verify; reads return it as absent. It runs on the
	// reading goroutine and must not block. Default: logged only.
	OnTamper func(TamperEvent)

	// WriteGate, when set, is asked before every append, atomic append
	// and bucket create, update or put, after the arguments were checked
	// and before anything is sent. A non-nil answer refuses the write:
	// the error returned wraps ErrUnavailable, ErrInsufficientStorage and
	// the gate's answer. The embedded server's disk guard is one
	// (natsembed.Embedded.WriteRefusal). It must not block. Deletes pass:
	// a tombstone is a few bytes, and removing data is how space is won
	// back.
	WriteGate func() error

	// MaxClockSkew bounds how far the clocks of the store's writers and of
	// the NATS servers may differ. A sealed value carries its writer's
	// time; one the server stored later than this after that time is a
	// genuine value put back, and is refused as replayed. Default 1m.
	MaxClockSkew time.Duration
}

// Store is the project's only client of JetStream for durable state. It is
// safe for concurrent use.
type Store struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	prefix   string
	replicas int
	timeout  time.Duration
	log      *slog.Logger

	sealer *sealer // nil without a record key
	skew   time.Duration
	now    func() time.Time // stamps sealed values

	gate func() error // nil: every write goes ahead

	// declared lists the streams declared through this store (buckets by
	// their stream's name), which Check asks about.
	declaredMu sync.Mutex
	declared   []string
}

// New validates cfg, fills its defaults and checks that JetStream answers on
// nc. It creates nothing: streams and buckets are declared with Stream and
// Bucket by the components that own them.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil connection", ErrInvalid)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if err := validateName("prefix", cfg.Prefix); err != nil {
		return nil, err
	}
	if cfg.Replicas < 0 || cfg.Replicas > maxReplicas {
		return nil, fmt.Errorf("%w: replicas %d outside 0..%d", ErrInvalid, cfg.Replicas, maxReplicas)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative timeout %v", ErrInvalid, cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxClockSkew < 0 {
		return nil, fmt.Errorf("%w: negative clock skew %v", ErrInvalid, cfg.MaxClockSkew)
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = defaultClockSkew
	}
	var seal *sealer
	if cfg.RecordKey != nil {
		var err error
		if seal, err = newSealer(cfg.RecordKey, cfg.OnTamper); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("store: jetstream client: %w", classify(err))
	}
	s := &Store{
		nc:       nc,
		js:       js,
		prefix:   cfg.Prefix,
		replicas: cfg.Replicas,
		timeout:  cfg.Timeout,
		log:      cfg.Logger,
		sealer:   seal,
		skew:     cfg.MaxClockSkew,
		now:      time.Now,
		gate:     cfg.WriteGate,
	}
	if err := s.awaitJetStream(ctx, cfg.WaitForJetStream); err != nil {
		return nil, err
	}
	if s.replicas == 0 {
		s.replicas = autoReplicas(nc)
	}
	s.log.Debug("store ready", "prefix", s.prefix, "replicas", s.replicas, "server", nc.ConnectedServerName())
	return s, nil
}

// Back-off of WaitForJetStream: quick at first, since a new cluster's meta
// leader is usually elected within a second or two, then every few seconds.
const (
	jetStreamWaitFirst = 100 * time.Millisecond
	jetStreamWaitMax   = 5 * time.Second
)

// awaitJetStream asks for the account's JetStream info, once or, with
// wait, until it answers.
func (s *Store) awaitJetStream(ctx context.Context, wait bool) error {
	backoff := jetStreamWaitFirst
	for attempt := 1; ; attempt++ {
		actx, cancel := s.withTimeout(ctx)
		_, err := s.js.AccountInfo(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				s.log.Info("JetStream answers", "server", s.nc.ConnectedServerName(), "attempts", attempt)
			}
			return nil
		}
		err = fmt.Errorf("store: JetStream not available on %s: %w", s.nc.ConnectedUrlRedacted(), classify(err))
		if !wait || !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		s.log.Warn("JetStream not available yet, retrying", "attempt", attempt, "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, jetStreamWaitMax)
	}
}

// autoReplicas counts the servers the connection has learned about. A
// server that is not in a cluster reports no cluster name, and its gossiped
// URL list may still hold seeds the client was given, so it counts as one.
func autoReplicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() == "" {
		return 1
	}
	return max(1, min(autoReplicasCap, len(nc.Servers())))
}

// sealerFor returns the sealer for a sealed bucket or stream, nil for one
// that is not sealed, and an error when the store has no record key.
func (s *Store) sealerFor(sealed bool, what string) (*sealer, error) {
	if !sealed {
		return nil, nil
	}
	if s.sealer == nil {
		return nil, fmt.Errorf("%w: %s is sealed but the store has no record key", ErrInvalid, what)
	}
	return s.sealer, nil
}

// tamper logs and reports a record that did not verify, and returns the
// error its read gives.
func (s *Store) tamper(what string, ev TamperEvent) error {
	s.sealer.report(ev, s.log)
	return tampered(what, ev)
}

// Replicas is the replica count used for every stream and bucket.
func (s *Store) Replicas() int { return s.replicas }

// Prefix is the namespace of every subject, stream and bucket.
func (s *Store) Prefix() string { return s.prefix }

// JetStream exposes the underlying client for health checks only (account
// info, server reachability). State must go through the Store's methods so
// that naming, validation and conflict mapping stay in one place.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// withTimeout gives ctx the store's default deadline when it has none.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) subject(relative string) string { return s.prefix + "." + relative }

func (s *Store) relative(subject string) string {
	return strings.TrimPrefix(subject, s.prefix+".")
}

func (s *Store) resourceName(name string) string {
	return strings.ToUpper(s.prefix) + "_" + name
}

// isConflictCode reports whether err is a refused expectation: JetStream
// API code 10071 (the subject's last sequence is not the expected one) or
// 10164 (a replicated stream refusing because the subject has a write still
// in flight, see subjectBusy), and the KV client's own sentinels that hide
// the code. All of them mean "re-read and decide again", so all map to
// ErrConflict.
func isConflictCode(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return true
		}
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// subjectBusy reports the 10164 refusal. A replicated stream's leader gives
// it, without comparing sequences, while an earlier write to the same
// subject is proposed but not yet applied; that includes a write whose ack
// the caller has already received. It says nothing about whether the
// expectation holds, so treating it as a final conflict would make every
// writer of a hot subject lose at once; a short retry gets the real answer
// (success or 10071).
func subjectBusy(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// maxBusyRetries bounds how often one write is repeated while a
// replicated stream reports its subject busy; with the backoff of rideBusy
// that is about 400 ms, far longer than a proposal takes to apply.
const maxBusyRetries = 12

// rideBusy runs write, a write with an expectation (a stream append or a
// bucket create, update or delete at a revision), and runs it again while
// the stream answers that the subject is busy (see subjectBusy), with a
// short back-off, until deadline, ctx or maxBusyRetries ends it. The
// repeat is safe: a busy refusal stored nothing. Without it, the write
// that follows one whose ack has just arrived (a ceremony consumed right
// after it was begun) could be refused as a conflict it is not.
func rideBusy[T any](ctx context.Context, deadline time.Time, write func() (T, error)) (T, error) {
	backoff := 500 * time.Microsecond
	for retry := 0; ; retry++ {
		v, err := write()
		if err == nil || !subjectBusy(err) || retry == maxBusyRetries {
			return v, err
		}
		t := time.NewTimer(min(backoff, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		backoff = min(2*backoff, 64*time.Millisecond)
	}
}

// conflict wraps a server error as ErrConflict, keeping the server's detail.
func conflict(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, ErrConflict, err)
}

// admitWrite asks the write gate whether the write what describes may go
// ahead. The description is built only for a refusal: every append passes
// here, and nearly all are admitted.
func (s *Store) admitWrite(what func() string) error {
	if s.gate == nil {
		return nil
	}
	if err := s.gate(); err != nil {
		return fmt.Errorf("%s: %w: %w: %w", what(), ErrUnavailable, ErrInsufficientStorage, err)
	}
	return nil
}
