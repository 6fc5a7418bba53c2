package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const defaultMaxValueSize = 1 << 20

// BucketConfig declares a key-value bucket.
type BucketConfig struct {
	// Name, e.g. "sessions", becomes "<PREFIX>_sessions".
	Name string
	// TTL expires every value this long after it was written. 0: never.
	TTL time.Duration
	// History is how many revisions per key are kept. Default 1; at most 64.
	History uint8
	// MaxValueSize bounds each value. Default 1 MiB.
	MaxValueSize int32
	// LeaderReads sends Get to the bucket's stream leader instead of
	// letting any replica answer. Replicas answer direct gets from their own
	// copy, which may lag an acknowledged write by a few milliseconds; a
	// bucket whose reads gate security decisions (is this session revoked?)
	// must never see the state before an acknowledged change.
	LeaderReads bool
	// LeaderConfirmsAbsence keeps Get on the nearest replica but asks the
	// stream leader before it answers ErrNotFound. A key written a moment
	// ago may not have reached that replica yet; for a bucket whose
	// absence means "refuse" (an avatar that no longer exists ends its
	// sessions), the rare miss costs one leader read and the common hit
	// stays a direct get. Ignored with LeaderReads, which always asks, and
	// on a single server, where there is no replica to lag.
	LeaderConfirmsAbsence bool
	// Sealed authenticates every value with the store's record key: a
	// value that does not verify reads as absent (ErrNotFound and
	// ErrTampered) and is reported through Config.OnTamper. Buckets whose
	// records grant power are sealed.
	Sealed bool
}

// Bucket is a handle on one key-value bucket. It is safe for concurrent use.
type Bucket struct {
	store       *Store
	name        string
	kv          jetstream.KeyValue
	leaderReads bool
	// confirmAbsence: a replica's "not found" is asked again of the leader.
	confirmAbsence bool
	rel            string    // name without the prefix, bound by seals
	seal           *sealer   // nil: not sealed
	declared       time.Time // when this handle was made, for freshBucketWindow
}

// freshBucketWindow is how long after its declaration a bucket's direct
// gets that find no responders are taken for replicas still starting and
// retried. Later, no responders is an outage, answered at once.
const freshBucketWindow = 30 * time.Second

// Entry is one revision of a key.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Created  time.Time
	Deleted  bool // a delete or purge marker (Watch only)
	// Tampered: a sealed value that did not verify, delivered by Watch as
	// a deletion (Deleted is set too) so caches drop the key.
	Tampered bool
}

// maxHistory is JetStream KV's own limit on kept revisions.
const maxHistory = 64

// Bucket creates the bucket or updates it to cfg, so every node can declare
// what it needs at start-up. It uses file storage and the store's replica
// count. Like Stream, it retries a cluster that is still settling.
func (s *Store) Bucket(ctx context.Context, cfg BucketConfig) (*Bucket, error) {
	if err := validateName("bucket name", cfg.Name); err != nil {
		return nil, err
	}
	if cfg.TTL < 0 || cfg.MaxValueSize < 0 {
		return nil, fmt.Errorf("%w: bucket %s has a negative limit", ErrInvalid, cfg.Name)
	}
	if cfg.History > maxHistory {
		return nil, fmt.Errorf("%w: bucket %s history %d exceeds %d", ErrInvalid, cfg.Name, cfg.History, maxHistory)
	}
	if cfg.History == 0 {
		cfg.History = 1
	}
	if cfg.MaxValueSize == 0 {
		cfg.MaxValueSize = defaultMaxValueSize
	}
	seal, err := s.sealerFor(cfg.Sealed, "bucket "+cfg.Name)
	if err != nil {
		return nil, err
	}
	if seal != nil && cfg.MaxValueSize < math.MaxInt32-sealedOverhead {
		cfg.MaxValueSize += sealedOverhead
	}
	name := s.resourceName(cfg.Name)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var kv jetstream.KeyValue
	err = s.retryDeclare(ctx, "bucket "+name, func() error {
		var err error
		kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:       name,
			TTL:          cfg.TTL,
			History:      cfg.History,
			MaxValueSize: cfg.MaxValueSize,
			Storage:      jetstream.FileStorage,
			Replicas:     s.replicas,
		})
		if err != nil {
			return fmt.Errorf("store: bucket %s: %w", name, classify(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.declare("KV_" + name)
	return &Bucket{store: s, name: name, kv: kv, leaderReads: cfg.LeaderReads, confirmAbsence: cfg.LeaderConfirmsAbsence && s.replicas > 1, rel: cfg.Name, seal: seal, declared: time.Now()}, nil
}

// Name is the bucket's full JetStream name.
func (b *Bucket) Name() string { return b.name }

// Get returns the current value of key, or ErrNotFound if it has none
// (never written, deleted or expired).
func (b *Bucket) Get(ctx context.Context, key string) (Entry, error) {
	if err := validateKey(key); err != nil {
		return Entry{}, err
	}
	ctx, cancel := b.store.withTimeout(ctx)
	defer cancel()
	if b.leaderReads {
		return b.getFromLeader(ctx, key)
	}
	e, err := b.kv.Get(ctx, key)
	// A bucket created a moment ago on a cluster answers direct gets only
	// once its replicas are up: until then the read has no responders,
	// which says nothing about the key. Wait for them, within ctx; an
	// older bucket without responders has lost them, and the caller
	// hears so at once.
	fresh := time.Since(b.declared) < freshBucketWindow
	for r := 0; fresh && errors.Is(err, nats.ErrNoResponders) && r < freshBucketRetries; r++ {
		t := time.NewTimer(noResponderWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Entry{}, fmt.Errorf("store: get %s in %s: %w", key, b.name, classify(err))
		case <-t.C:
		}
		e, err = b.kv.Get(ctx, key)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			if b.confirmAbsence {
				return b.getFromLeader(ctx, key)
			}
			return Entry{}, fmt.Errorf("store: get %s in %s: %w", key, b.name, ErrNotFound)
		}
		return Entry{}, fmt.Errorf("store: get %s in %s: %w", key, b.name, classify(err))
	}
	return b.open("get", entry(e))
}

// open verifies a sealed entry's value and strips its seal; an entry that
// does not verify is reported and refused as absent.
func (b *Bucket) open(op string, e Entry) (Entry, error) {
	if b.seal == nil || e.Deleted {
		return e, nil
	}
	value, reason := b.seal.openValue(b.rel, e.Key, e.Value, e.Created, b.store.skew)
	if reason != "" {
		return Entry{}, b.store.tamper(fmt.Sprintf("store: %s %s in %s", op, e.Key, b.name),
			TamperEvent{Bucket: b.rel, Key: e.Key, Revision: e.Revision, Reason: reason})
	}
	e.Value = value
	return e, nil
}

// sealed is the stored form of value.
func (b *Bucket) sealed(key string, value []byte) []byte {
	if b.seal == nil {
		return value
	}
	return b.seal.sealValue(b.rel, key, value, b.store.now())
}

// Create stores value under key only if the key has no live value, and
// returns the new revision; ErrConflict if it has one.
func (b *Bucket) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := b.checkWrite(key, value); err != nil {
		return 0, err
	}
	ctx, cancel := b.store.withTimeout(ctx)
	defer cancel()
	sealed := b.sealed(key, value)
	rev, err := b.ridingBusy(ctx, func() (uint64, error) { return b.kv.Create(ctx, key, sealed) })
	return rev, b.writeErr("create", key, err)
}

// Update stores value under key only if the key's current revision is
// revision (compare-and-set); ErrConflict otherwise.
func (b *Bucket) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	if err := b.checkWrite(key, value); err != nil {
		return 0, err
	}
	if revision == 0 {
		return 0, fmt.Errorf("%w: update %s with revision 0: use Create", ErrInvalid, key)
	}
	ctx, cancel := b.store.withTimeout(ctx)
	defer cancel()
	sealed := b.sealed(key, value)
	rev, err := b.ridingBusy(ctx, func() (uint64, error) { return b.kv.Update(ctx, key, sealed, revision) })
	return rev, b.writeErr("update", key, err)
}

// Put stores value under key unconditionally.
func (b *Bucket) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := b.checkWrite(key, value); err != nil {
		return 0, err
	}
	ctx, cancel := b.store.withTimeout(ctx)
	defer cancel()
	rev, err := b.kv.Put(ctx, key, b.sealed(key, value))
	return rev, b.writeErr("put", key, err)
}

// Delete removes key's value. revision 0 deletes unconditionally; otherwise
// only if the key's current revision is revision (ErrConflict otherwise).
func (b *Bucket) Delete(ctx context.Context, key string, revision uint64) error {
	if err := validateKey(key); err != nil {
		return err
	}
	ctx, cancel := b.store.withTimeout(ctx)
	defer cancel()
	if revision == 0 {
		return b.writeErr("delete", key, b.kv.Delete(ctx, key))
	}
	_, err := b.ridingBusy(ctx, func() (uint64, error) {
		return 0, b.kv.Delete(ctx, key, jetstream.LastRevision(revision))
	})
	return b.writeErr("delete", key, err)
}

// ridingBusy runs a write with an expectation (see rideBusy) within ctx,
// which withTimeout gave a deadline.
func (b *Bucket) ridingBusy(ctx context.Context, write func() (uint64, error)) (uint64, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(b.store.timeout)
	}
	return rideBusy(ctx, deadline, write)
}

// Watch delivers the current value of every key matching pattern ("*" for
// one token, ">" for the rest, e.g. "session.>"), then every later change,
// deletes included (Deleted set). The channel closes when ctx ends; the
// caller must keep receiving until then.
func (b *Bucket) Watch(ctx context.Context, pattern string) (<-chan Entry, error) {
	if err := validateKeyPattern(pattern); err != nil {
		return nil, err
	}
	w, err := b.kv.Watch(ctx, pattern)
	if err != nil {
		return nil, fmt.Errorf("store: watch %s in %s: %w", pattern, b.name, classify(err))
	}
	out := make(chan Entry)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil { // end of the initial replay
					continue
				}
				ent, err := b.open("watch", entry(e))
				if err != nil {
					ent = Entry{Key: e.Key(), Revision: e.Revision(), Created: e.Created(), Deleted: true, Tampered: true}
				}
				select {
				case out <- ent:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// Keys lists the keys that currently have a value.
func (b *Bucket) Keys(ctx context.Context) ([]string, error) { return b.keys(ctx) }

// KeysMatching lists the keys matching pattern ("*" for one token, ">" for
// the rest, e.g. "owner.*") that currently have a value: the server
// filters them, so the cost follows the matches, not the bucket.
func (b *Bucket) KeysMatching(ctx context.Context, pattern string) ([]string, error) {
	if err := validateKeyPattern(pattern); err != nil {
		return nil, err
	}
	return b.keys(ctx, pattern)
}

func (b *Bucket) keys(ctx context.Context, filters ...string) ([]string, error) {
	ctx, cancel := b.store.withTimeout(ctx)
	defer cancel()
	var lister jetstream.KeyLister
	var err error
	if len(filters) > 0 {
		lister, err = b.kv.ListKeysFiltered(ctx, filters...)
	} else {
		lister, err = b.kv.ListKeys(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("store: keys of %s: %w", b.name, classify(err))
	}
	defer lister.Stop()
	// The lister may repeat a key that is written while it runs.
	keys := []string{}
	seen := map[string]bool{}
	for k := range lister.Keys() {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: keys of %s: %w", b.name, classify(err))
	}
	return keys, nil
}

func (b *Bucket) checkWrite(key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	size := int64(len(value))
	if b.seal != nil {
		size += sealedOverhead
	}
	if limit := b.store.nc.MaxPayload(); limit > 0 && size > limit {
		return fmt.Errorf("%w: value of %d bytes exceeds the server's max payload %d", ErrInvalid, len(value), limit)
	}
	return b.store.admitWrite(func() string { return "store: write " + key + " in " + b.name })
}

func (b *Bucket) writeErr(op, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case isConflictCode(err):
		return conflict(fmt.Sprintf("store: %s %s in %s", op, key, b.name), err)
	default:
		return fmt.Errorf("store: %s %s in %s: %w", op, key, b.name, classify(err))
	}
}

func entry(e jetstream.KeyValueEntry) Entry {
	op := e.Operation()
	return Entry{
		Key:      e.Key(),
		Value:    e.Value(),
		Revision: e.Revision(),
		Created:  e.Created(),
		Deleted:  op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge,
	}
}

// Last returns the key's last change as the stream leader has it,
// deletes included: a deleted or purged key gives an Entry with Deleted
// set and Created the time of the deletion. ErrNotFound means the key was
// never written (or its history was purged). Unlike Get, it tells a key
// that never had a value from one whose value was taken away, and when.
func (b *Bucket) Last(ctx context.Context, key string) (Entry, error) {
	if err := validateKey(key); err != nil {
		return Entry{}, err
	}
	ctx, cancel := b.store.withTimeout(ctx)
	defer cancel()
	raw, err := b.store.lastFromLeader(ctx, "KV_"+b.kv.Bucket(), "$KV."+b.kv.Bucket()+"."+key)
	if err != nil {
		return Entry{}, fmt.Errorf("store: last change of %s in %s: %w", key, b.name, classify(err))
	}
	op := raw.Header.Get("KV-Operation")
	e := Entry{Key: key, Revision: raw.Sequence, Created: raw.Time, Deleted: op == "DEL" || op == "PURGE"}
	if !e.Deleted {
		e.Value = raw.Data
	}
	return b.open("last change of", e)
}

// getFromLeader reads the key's last message from the stream leader (see
// leader.go).
func (b *Bucket) getFromLeader(ctx context.Context, key string) (Entry, error) {
	raw, err := b.store.lastFromLeader(ctx, "KV_"+b.kv.Bucket(), "$KV."+b.kv.Bucket()+"."+key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Entry{}, fmt.Errorf("store: get %s in %s: %w", key, b.name, ErrNotFound)
		}
		return Entry{}, fmt.Errorf("store: get %s in %s: %w", key, b.name, classify(err))
	}
	// A delete or purge leaves a marker message whose KV-Operation header
	// says so; the key then has no live value.
	if op := raw.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return Entry{}, fmt.Errorf("store: get %s in %s: %w", key, b.name, ErrNotFound)
	}
	return b.open("get", Entry{Key: key, Value: raw.Data, Revision: raw.Sequence, Created: raw.Time})
}
