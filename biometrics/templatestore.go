package biometrics

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/store"
)

// TemplateBucket is the KV bucket that holds the encrypted templates.
const TemplateBucket = "templates"

// sealedVersion prefixes every stored value, so that the sealing can change
// (another cipher, a rotated key) without guessing at old values.
const sealedVersion = 1

// keyCheckKey holds a check value of the key the bucket's templates are
// sealed under. Avatar keys are base64url, which has no dot, so it never
// names an avatar, and the "*" of Changes does not match it.
const keyCheckKey = "meta.key-check"

// ErrKeyMismatch reports a key other than the one the stored templates
// are sealed under: a node given its own key would read none of them, and
// seal new ones no other node can read.
var ErrKeyMismatch = errors.New("biometrics: this template key is not the one the stored templates are sealed under")

// ErrKeyRetired reports a key that the stored templates were sealed under
// before the cluster rotated to another: a node sealing new templates under
// it would write what the nodes that dropped it cannot read.
var ErrKeyRetired = errors.New("biometrics: this template key was retired by a rotation; put the cluster's new key first in the key file")

// ErrTemplateKey reports a key that is not 32 bytes.
var ErrTemplateKey = errors.New("biometrics: template key must be 32 bytes")

// ErrSealed reports a stored template that does not open under the key and
// avatar id: another realm's key, a value moved to another avatar's key, or
// tampering.
var ErrSealed = errors.New("biometrics: stored template does not open")

// TemplateStore keeps templates in KV, encrypted with AES-256-GCM under a
// key the realm keeps in its data directory. The avatar id is the
// associated data, so a template copied under another avatar's key does not
// open. It is safe for concurrent use.
type TemplateStore struct {
	bucket *store.Bucket
	ring   sealRing
	// rotated: this store rotated the bucket to its key (Rotated).
	rotated bool

	// putBufs holds the buffers templates are encoded and sealed in, and
	// bounds how many Puts are in flight at once. A classroom finishing
	// enrollment together puts a thousand templates in the same second;
	// each one in flight holds its 42 KB encoding and the store's and the
	// NATS client's copies of it until the server acknowledges, so letting
	// them all run at once raised the heap by about a hundred megabytes
	// for no gain: the server stores them one after another anyway. A Put
	// waiting for a buffer holds nothing but the template it was given.
	putBufs chan []byte

	// underRetired holds the avatars whose template this store last saw
	// sealed under a retired key (UnderRetiredKeys): what a rotation
	// still has to seal again, as far as this node has read.
	retiredMu    sync.Mutex
	underRetired map[string]struct{}

	// own is the newest write of each key through this store, for Changes
	// to mark its own writes (TemplateChange.Own).
	ownMu sync.Mutex
	own   map[string]*ownPut
}

// ownPut is one Put: done closes once the store answered it, with rev the
// revision it wrote (0 if it failed).
type ownPut struct {
	done chan struct{}
	rev  uint64
}

// putsInFlight bounds TemplateStore.Put. Sixteen keep the server's write
// path busy on a local or a clustered store; a node's enrollments wait a
// few milliseconds each for a buffer in a burst, and never otherwise.
const putsInFlight = 16

// NewTemplateStore declares the templates bucket and checks that key is
// the bucket's: the first store to open the bucket records a check value
// of its key (an HMAC of a fixed label, from which the key cannot be
// recovered), and a store opened with any other key fails with
// ErrKeyMismatch. Keys are never logged or stored by this package.
//
// retired are keys the cluster sealed templates under before it rotated
// to key: they open what they sealed, never seal anything new. A store
// whose key is new while one of its retired keys is the bucket's rotates
// the bucket to key (see keyfile.CheckRing); from then on a store that
// would seal under a retired key fails with ErrKeyRetired. Templates still
// sealed under a retired key are sealed again by Reseal.
func NewTemplateStore(ctx context.Context, st *store.Store, key []byte, retired ...[]byte) (*TemplateStore, error) {
	ring, err := newSealRing("", key, retired)
	if err != nil {
		if errors.Is(err, ErrTemplateKey) {
			return nil, err
		}
		return nil, fmt.Errorf("biometrics: template cipher: %w", err)
	}
	// Leader reads: a template deleted through one node must not be read
	// back from a lagging replica by another.
	b, err := st.Bucket(ctx, store.BucketConfig{Name: TemplateBucket, MaxValueSize: 64 << 10, LeaderReads: true})
	if err != nil {
		return nil, fmt.Errorf("biometrics: template store: %w", err)
	}
	rotated, err := checkKey(ctx, b, append([][]byte{key}, retired...))
	if err != nil {
		return nil, err
	}
	ts := &TemplateStore{bucket: b, ring: ring, rotated: rotated, putBufs: make(chan []byte, putsInFlight), own: map[string]*ownPut{},
		underRetired: map[string]struct{}{}}
	for range putsInFlight {
		ts.putBufs <- nil // grown by the first Puts that take them
	}
	return ts, nil
}

// checkKey records the ring's check value if the bucket has none, compares
// it otherwise, and rotates the bucket to the ring's first key when that
// is new (keyfile.CheckRing).
func checkKey(ctx context.Context, b *store.Bucket, ring [][]byte) (rotated bool, err error) {
	rotated, err = keyfile.CheckRing(ctx, b, keyCheckKey, ring, "zerorealm/template-key-check/v1")
	switch {
	case errors.Is(err, keyfile.ErrMismatch):
		return false, ErrKeyMismatch
	case errors.Is(err, keyfile.ErrRetired):
		return false, ErrKeyRetired
	case err != nil:
		return false, fmt.Errorf("biometrics: template key: %w", err)
	}
	return rotated, nil
}

// Rotated reports that opening this store rotated the cluster's templates
// to its key: the first node started with a new key first in its ring.
func (ts *TemplateStore) Rotated() bool { return ts.rotated }

// ResealStats counts what Reseal found.
type ResealStats struct {
	// Resealed were sealed under a retired key and are now under the
	// ring's key; Current already were.
	Resealed, Current int
	// Unopened did not open under any key of the ring (another realm's, or
	// tampered) and were left as they are.
	Unopened int
	// Rewritten were written under a retired key again each time Reseal
	// read them (resealTries): a node still seals under it.
	Rewritten int
}

// resealTries bounds how often Reseal reads a template again that was
// written while it sealed it: a write under the ring's key ends it, and
// only a node still sealing under a retired key writes again and again.
const resealTries = 3

// Reseal seals every template that a retired key of the ring sealed under
// the ring's key, so that the retired key can then leave every node's
// ring. Each is written only over the revision it read
// (compare-and-set): a template written meanwhile, by a stream adapting it
// or by a delete, is read again. Every node calls it when it starts, so
// once the last node runs with the new key first and has started, no
// template is left under a retired one (ResealStats says how many were).
// It stops at the first error of the store, with what it did until then.
func (ts *TemplateStore) Reseal(ctx context.Context) (ResealStats, error) {
	var stats ResealStats
	if len(ts.ring) == 1 {
		return stats, nil // nothing can be under a retired key this ring holds
	}
	keys, err := ts.bucket.Keys(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return stats, nil
	}
	if err != nil {
		return stats, fmt.Errorf("biometrics: list templates: %w", err)
	}
	for _, k := range keys {
		if strings.Contains(k, ".") {
			continue // the key check, not a template
		}
		id, derr := base64.RawURLEncoding.DecodeString(k)
		if derr != nil {
			stats.Unopened++
			continue
		}
		if err := ts.resealOne(ctx, string(id), &stats); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

func (ts *TemplateStore) resealOne(ctx context.Context, avatarID string, stats *ResealStats) error {
	for range resealTries {
		e, err := ts.bucket.Get(ctx, keyOf(avatarID))
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("biometrics: template of %q: %w", avatarID, err)
		}
		t, retired, err := ts.open(avatarID, e.Value)
		switch {
		case err != nil:
			stats.Unopened++
			return nil
		case !retired:
			stats.Current++
			return nil
		}
		err = ts.put(ctx, avatarID, t, func(key string, sealed []byte) (uint64, error) {
			return ts.bucket.Update(ctx, key, sealed, e.Revision)
		})
		if err == nil {
			stats.Resealed++
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("biometrics: seal the template of %q again: %w", avatarID, err)
		}
	}
	stats.Rewritten++
	return nil
}

// keyOf turns an avatar id into a KV key: ids may hold characters keys may
// not.
func keyOf(avatarID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(avatarID))
}

// Get returns the avatar's template; an error wrapping store.ErrNotFound
// when it has none.
func (ts *TemplateStore) Get(ctx context.Context, avatarID string) (*Template, error) {
	e, err := ts.bucket.Get(ctx, keyOf(avatarID))
	if err != nil {
		return nil, fmt.Errorf("biometrics: template of %q: %w", avatarID, err)
	}
	t, _, err := ts.open(avatarID, e.Value)
	return t, err
}

// open opens a stored template; retired reports that a retired key of the
// ring sealed it.
func (ts *TemplateStore) open(avatarID string, sealed []byte) (t *Template, retired bool, err error) {
	ns := ts.ring.sealer().NonceSize()
	if len(sealed) < 1+ns || sealed[0] != sealedVersion {
		return nil, false, fmt.Errorf("%w: template of %q", ErrSealed, avatarID)
	}
	plain, retired, err := ts.ring.open(sealed[1:1+ns], sealed[1+ns:], []byte(avatarID))
	if err != nil {
		return nil, false, fmt.Errorf("%w: template of %q", ErrSealed, avatarID)
	}
	t = new(Template)
	if err := t.UnmarshalBinary(plain); err != nil {
		return nil, false, fmt.Errorf("biometrics: template of %q: %w", avatarID, err)
	}
	ts.sealedUnder(avatarID, retired)
	return t, retired, nil
}

// sealedUnder notes whether the avatar's stored template is under a
// retired key; one deleted, or written through this store, is not.
func (ts *TemplateStore) sealedUnder(avatarID string, retired bool) {
	ts.retiredMu.Lock()
	defer ts.retiredMu.Unlock()
	if retired {
		ts.underRetired[avatarID] = struct{}{}
	} else {
		delete(ts.underRetired, avatarID)
	}
}

// UnderRetiredKeys counts the stored templates this store last read
// sealed under a retired key, and has not seen written or deleted since.
// A node reads every template when it starts and each one written
// through another node, so once a rotation's templates are all sealed
// again (Reseal), it is 0 on every node whose key file puts the new key
// first: the retired key may leave the files then.
func (ts *TemplateStore) UnderRetiredKeys() int {
	ts.retiredMu.Lock()
	defer ts.retiredMu.Unlock()
	return len(ts.underRetired)
}

// DeletedAt returns when the avatar's template was deleted, or the zero
// time when it has one or never had one. The realm asks before enrolling
// an avatar without a template: only a passkey assertion made after the
// deletion consents to a new one, not the step-up that authorized the
// deletion itself.
func (ts *TemplateStore) DeletedAt(ctx context.Context, avatarID string) (time.Time, error) {
	e, err := ts.bucket.Last(ctx, keyOf(avatarID))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("biometrics: template of %q: %w", avatarID, err)
	case e.Deleted:
		return e.Created, nil
	default:
		return time.Time{}, nil
	}
}

// Put stores the avatar's template, replacing any earlier one. It waits
// for one of the store's buffers (putsInFlight) while ctx allows.
func (ts *TemplateStore) Put(ctx context.Context, avatarID string, t *Template) error {
	return ts.put(ctx, avatarID, t, func(key string, sealed []byte) (uint64, error) {
		return ts.bucket.Put(ctx, key, sealed)
	})
}

// ErrTemplateVoid: the avatar deleted a template after what a template to
// be stored was collected under, so it is never stored.
var ErrTemplateVoid = errors.New("biometrics: the avatar deleted its template since")

// PutUnlessDeletedSince stores the avatar's template unless the avatar
// deleted a template after since (the passkey assertion an enrollment was
// collected under, or an adapted template's enrollment), in one
// compare-and-set: the write applies only to the key's last change as it
// was read, so a deletion that lands in between fails it too
// (store.ErrConflict) rather than being overwritten. A deletion is a
// promise to the person, and a template collected before it, written
// late by a node that had not heard of it yet, must not bring it back
// (ErrTemplateVoid).
func (ts *TemplateStore) PutUnlessDeletedSince(ctx context.Context, avatarID string, t *Template, since time.Time) error {
	last, err := ts.bucket.Last(ctx, keyOf(avatarID))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ts.put(ctx, avatarID, t, func(key string, sealed []byte) (uint64, error) {
			return ts.bucket.Create(ctx, key, sealed)
		})
	case err != nil:
		return fmt.Errorf("biometrics: put template of %q: %w", avatarID, err)
	case last.Deleted && !since.After(last.Created):
		return fmt.Errorf("%w: template of %q deleted at %s", ErrTemplateVoid, avatarID, last.Created.UTC().Format(time.RFC3339Nano))
	}
	return ts.put(ctx, avatarID, t, func(key string, sealed []byte) (uint64, error) {
		return ts.bucket.Update(ctx, key, sealed, last.Revision)
	})
}

// put seals t and stores it with write, marking it as this store's own
// for the change feed.
func (ts *TemplateStore) put(ctx context.Context, avatarID string, t *Template, write func(key string, sealed []byte) (uint64, error)) error {
	var buf []byte
	select {
	case buf = <-ts.putBufs:
	case <-ctx.Done():
		return fmt.Errorf("biometrics: put template of %q: %w", avatarID, ctx.Err())
	}
	// The buffer goes back once the store has the value: the store seals
	// a copy of it, and the NATS client copies what it sends.
	sealed, err := ts.seal(buf[:0], avatarID, t)
	if err != nil {
		ts.putBufs <- buf
		return err
	}
	// Marked before it is written: the feed may report the write before
	// the store acknowledges it, and then waits for the answer.
	key, w := keyOf(avatarID), &ownPut{done: make(chan struct{})}
	ts.ownMu.Lock()
	ts.own[key] = w
	ts.ownMu.Unlock()
	rev, err := write(key, sealed)
	ts.putBufs <- sealed
	w.rev = rev
	close(w.done)
	if err != nil {
		ts.ownMu.Lock()
		if ts.own[key] == w {
			delete(ts.own, key)
		}
		ts.ownMu.Unlock()
		return fmt.Errorf("biometrics: put template of %q: %w", avatarID, err)
	}
	ts.sealedUnder(avatarID, false)
	return nil
}

// seal appends the stored form of t to dst: the version, a fresh nonce,
// and the template's encoding sealed in place under the avatar's id.
func (ts *TemplateStore) seal(dst []byte, avatarID string, t *Template) ([]byte, error) {
	aead := ts.ring.sealer()
	ns := aead.NonceSize()
	dst = slices.Grow(dst, 1+ns+t.binaryLen()+aead.Overhead())
	dst = append(dst, sealedVersion)
	dst = dst[:1+ns]
	nonce := dst[1:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("biometrics: nonce: %w", err)
	}
	plain, err := t.AppendBinary(dst)
	if err != nil {
		return nil, err
	}
	return aead.Seal(dst, nonce, plain[1+ns:], []byte(avatarID)), nil
}

// Delete removes the avatar's template (the realm checks the step-up that
// authorizes it). Deleting a template that does not exist is not an error.
func (ts *TemplateStore) Delete(ctx context.Context, avatarID string) error {
	if err := ts.bucket.Delete(ctx, keyOf(avatarID), 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("biometrics: delete template of %q: %w", avatarID, err)
	}
	ts.sealedUnder(avatarID, false)
	return nil
}

// All returns every stored template by avatar id, for the engine's
// population at start-up. A template that does not open is skipped and
// counted in skipped, so one bad value does not keep a node from starting.
func (ts *TemplateStore) All(ctx context.Context) (templates map[string]*Template, skipped int, err error) {
	keys, err := ts.bucket.Keys(ctx)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return map[string]*Template{}, 0, nil
		}
		return nil, 0, fmt.Errorf("biometrics: list templates: %w", err)
	}
	templates = make(map[string]*Template, len(keys))
	for _, k := range keys {
		if strings.Contains(k, ".") {
			continue // the key check, not a template
		}
		id, derr := base64.RawURLEncoding.DecodeString(k)
		if derr != nil {
			skipped++
			continue
		}
		t, gerr := ts.Get(ctx, string(id))
		if gerr != nil {
			if errors.Is(gerr, store.ErrNotFound) {
				continue // deleted meanwhile
			}
			skipped++
			continue
		}
		templates[string(id)] = t
	}
	return templates, skipped, nil
}

// TemplateChange reports that an avatar's stored template was written
// (read it again for the new one) or deleted, or one of the feed's Lost
// and Resumed signals (see store.Change): while lost, changes may be
// missed.
type TemplateChange struct {
	AvatarID      string
	Deleted       bool
	Lost, Resumed bool
	// Own: the write was this store's newest Put of the template, so the
	// caller already holds what it wrote and need not read it back. Only
	// one feed of a store is told; a write superseded by a newer Put of
	// the same template before the feed reports it is reported without
	// Own, as every write of another node is.
	Own bool
}

// Changes reports every template written or deleted after it returns, on
// any node, so that a node can keep its population and its live streams in
// step with the store: a template deleted through one node must stop
// scoring on all of them. The channel closes when ctx ends.
func (ts *TemplateStore) Changes(ctx context.Context) (<-chan TemplateChange, error) {
	in, err := ts.bucket.Changes(ctx, "*")
	if err != nil {
		return nil, fmt.Errorf("biometrics: template changes: %w", err)
	}
	out := make(chan TemplateChange, 64)
	go func() {
		defer close(out)
		for c := range in {
			tc := TemplateChange{Deleted: c.Deleted, Lost: c.Lost, Resumed: c.Resumed}
			if c.Lost || c.Resumed {
				ts.forgetOwn()
			} else {
				tc.Own = !c.Deleted && ts.ownWrite(ctx, c.Key, c.Revision)
				id, err := base64.RawURLEncoding.DecodeString(c.Key)
				if err != nil {
					continue // not a key this store wrote
				}
				tc.AvatarID = string(id)
				if c.Deleted {
					ts.sealedUnder(tc.AvatarID, false)
				}
			}
			select {
			case out <- tc:
			case <-ctx.Done():
				// Keep draining in until it closes with ctx.
			}
		}
	}()
	return out, nil
}

// ownWrite reports whether revision is this store's newest write of key,
// waiting for that write's answer if it is still in flight, and forgets
// it: each write is reported once. A key holds one entry at most, its
// newest Put, so the map is bounded by the avatars whose templates this
// node wrote.
func (ts *TemplateStore) ownWrite(ctx context.Context, key string, revision uint64) bool {
	ts.ownMu.Lock()
	w := ts.own[key]
	ts.ownMu.Unlock()
	if w == nil {
		return false
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return false
	}
	if w.rev != revision {
		return false
	}
	ts.ownMu.Lock()
	if ts.own[key] == w {
		delete(ts.own, key)
	}
	ts.ownMu.Unlock()
	return true
}

// forgetOwn drops the writes not yet reported: when the feed is lost, the
// reconciliation that follows reads every template again anyway.
func (ts *TemplateStore) forgetOwn() {
	ts.ownMu.Lock()
	clear(ts.own)
	ts.ownMu.Unlock()
}

// newGCM is AES-256-GCM under key: how templates and shared path cells
// are sealed.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// exchangeSeedLabel derives the realm's key for exchanging background
// statistics with other realms from the template key (ExchangeSeed).
const exchangeSeedLabel = "zerorealm/background-exchange/realm-key/v1"

// ExchangeSeed is the seed of the realm's Ed25519 key for exchanging
// background statistics with other realms: derived from the template key,
// which every node of a cluster holds and nothing outside it does, so that
// every node signs as the realm and a peer realm pins one key for all of
// them, the nodes added later included. It never seals or opens anything.
func ExchangeSeed(templateKey []byte) ([]byte, error) {
	if len(templateKey) != 32 {
		return nil, ErrTemplateKey
	}
	return hkdf.Key(sha256.New, templateKey, nil, exchangeSeedLabel, 32)
}
