package biometrics

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// An enrollment set aside on one node is taken up by the same session's
// next stream on whichever node it comes back to: a load balancer, or a
// busy node shedding streams, sends a headset elsewhere, and the person
// should not give the minute of motion again for it. The enrollment's
// window statistics (never motion) go to a bucket of their own, sealed
// under a key derived from the cluster's template key and bound to the
// session and the avatar, kept for as long as an enrollment may resume,
// and claimed by one node only: a compare-and-set delete, so that two
// nodes never both go on with it.

// AsideBucket is the KV bucket of enrollments set aside.
const AsideBucket = "enrollments-aside"

// asideSealLabel derives the bucket's sealing key from the template key:
// a value of one purpose can never be opened as the other's.
const asideSealLabel = "zerorealm/enrollment-aside/v1"

// Versions of an enrollment's encoding and of the stored record around it.
const (
	enrollmentVersion = 1
	asideVersion      = 1
)

// maxEnrollmentWant bounds a decoded enrollment: an hour of windows at a
// hop of one second, beyond any enrollment a realm asks for.
const maxEnrollmentWant = 3600

// MaxAsideBytes bounds a stored enrollment (about 34 KB for the default
// minute); a longer one stays on its node.
const MaxAsideBytes = 256 << 10

// ErrEnrollment reports bytes that are not an enrollment's encoding.
var ErrEnrollment = errors.New("biometrics: not an enrollment")

// AvatarID is the avatar whose enrollment it is.
func (en *Enrollment) AvatarID() string { return en.avatarID }

// AppendBinary appends the enrollment's encoding to b: how many windows it
// wants and each collected window's statistics (its time span and its
// core, gaze and heart features; never motion).
func (en *Enrollment) AppendBinary(b []byte) ([]byte, error) {
	if en == nil || len(en.windows) == 0 {
		return nil, fmt.Errorf("%w: nothing collected", ErrEnrollment)
	}
	b = append(b, enrollmentVersion)
	b = binary.LittleEndian.AppendUint16(b, NumCoreFeatures)
	b = binary.LittleEndian.AppendUint32(b, uint32(en.want))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(en.windows)))
	for i := range en.windows {
		w := &en.windows[i]
		if len(w.Core) != NumCoreFeatures {
			return nil, fmt.Errorf("%w: window %d has %d features", ErrEnrollment, i, len(w.Core))
		}
		b = binary.LittleEndian.AppendUint64(b, w.StartUS)
		b = binary.LittleEndian.AppendUint64(b, w.EndUS)
		b = appendFloats(b, w.Core)
		b = appendBlock(b, w.Gaze)
		b = appendBlock(b, w.Heart)
	}
	return b, nil
}

// DecodeEnrollment reads what AppendBinary wrote, as avatarID's
// enrollment. Anything else (another version or feature set, a count out
// of bounds, a non-finite feature, bytes left over) is ErrEnrollment.
func DecodeEnrollment(avatarID string, b []byte) (*Enrollment, error) {
	const head = 1 + 2 + 4 + 4
	if len(b) < head || b[0] != enrollmentVersion {
		return nil, fmt.Errorf("%w: no version %d header", ErrEnrollment, enrollmentVersion)
	}
	if n := binary.LittleEndian.Uint16(b[1:]); n != NumCoreFeatures {
		return nil, fmt.Errorf("%w: %d features, want %d", ErrEnrollment, n, NumCoreFeatures)
	}
	want := binary.LittleEndian.Uint32(b[3:])
	count := binary.LittleEndian.Uint32(b[7:])
	if want < 2 || want > maxEnrollmentWant || count == 0 || count > want {
		return nil, fmt.Errorf("%w: %d of %d windows", ErrEnrollment, count, want)
	}
	rest := b[head:]
	const fixed = 8 + 8 + 8*NumCoreFeatures
	// Every window takes at least fixed+8 bytes: a claimed count the
	// bytes cannot hold is refused before anything is allocated for it.
	if uint64(len(rest)) < uint64(count)*(fixed+8) {
		return nil, fmt.Errorf("%w: %d windows in %d bytes", ErrEnrollment, count, len(rest))
	}
	en := &Enrollment{avatarID: avatarID, want: int(want), windows: make([]Features, count)}
	for i := range en.windows {
		if len(rest) < fixed {
			return nil, fmt.Errorf("%w: window %d truncated", ErrEnrollment, i)
		}
		w := &en.windows[i]
		w.StartUS = binary.LittleEndian.Uint64(rest)
		w.EndUS = binary.LittleEndian.Uint64(rest[8:])
		w.Core = readFloats(rest[16:], NumCoreFeatures)
		rest = rest[fixed:]
		var err error
		if w.Gaze, rest, err = readBlock(rest, 16); err != nil {
			return nil, fmt.Errorf("%w: window %d gaze: %w", ErrEnrollment, i, err)
		}
		if w.Heart, rest, err = readBlock(rest, 16); err != nil {
			return nil, fmt.Errorf("%w: window %d heart rate: %w", ErrEnrollment, i, err)
		}
		if w.EndUS < w.StartUS || !allFinite(w.Core) || !allFinite(w.Gaze) || !allFinite(w.Heart) {
			return nil, fmt.Errorf("%w: window %d is not a window's statistics", ErrEnrollment, i)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes left over", ErrEnrollment, len(rest))
	}
	return en, nil
}

// AsideEnrollment is an enrollment set aside for its session.
type AsideEnrollment struct {
	Session    string
	Enrollment *Enrollment
	// ConsentAt is when the user-verified passkey assertion that started
	// the enrollment was made; ClosedAt when its stream closed.
	ConsentAt, ClosedAt time.Time
}

// Avatar is the avatar whose enrollment it is.
func (a AsideEnrollment) Avatar() string { return a.Enrollment.avatarID }

// AsideStore keeps the enrollments set aside, sealed, for any node of the
// cluster to take up. It is safe for concurrent use.
type AsideStore struct {
	bucket *store.Bucket
	ring   sealRing
}

// ErrAsideTaken: the enrollment set aside is not there to take any more;
// another node took it up, or it was replaced, expired or forgotten.
var ErrAsideTaken = errors.New("biometrics: the enrollment set aside is no longer there")

// NewAsideStore declares the bucket, whose values expire keep after they
// were written (the time an enrollment may resume), and derives its
// sealing key from the cluster's 32-byte template key; enrollments set
// aside under a retired template key (a rotation's, see NewTemplateStore)
// still open.
func NewAsideStore(ctx context.Context, st *store.Store, templateKey []byte, keep time.Duration, retired ...[]byte) (*AsideStore, error) {
	if keep <= 0 {
		return nil, fmt.Errorf("biometrics: enrollments set aside kept for %s", keep)
	}
	ring, err := newSealRing(asideSealLabel, templateKey, retired)
	if errors.Is(err, ErrTemplateKey) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("biometrics: enrollment aside key: %w", err)
	}
	// Leader reads: a claim must see the newest write, and a value a
	// replica still shows after another node's claim would only fail
	// that claim's compare-and-set.
	b, err := st.Bucket(ctx, store.BucketConfig{Name: AsideBucket, TTL: keep, MaxValueSize: MaxAsideBytes + 64, LeaderReads: true})
	if err != nil {
		return nil, fmt.Errorf("biometrics: enrollment aside store: %w", err)
	}
	return &AsideStore{bucket: b, ring: ring}, nil
}

// asideKey is the key of a session's enrollment: the avatar's first, so
// that the avatar's can be forgotten together. Ids are base64url, which
// has no dot.
func asideKey(avatarID, sessionID string) string {
	return keyOf(avatarID) + "." + keyOf(sessionID)
}

// associated binds a sealed value to its session and avatar: a value
// copied under another key does not open.
func associated(avatarID, sessionID string) []byte {
	return []byte(asideSealLabel + "\x00" + avatarID + "\x00" + sessionID)
}

// SealedAside is an enrollment set aside, sealed for the store: its
// encoding is made while the caller still holds the enrollment, and it can
// be written later, from anywhere.
type SealedAside struct {
	avatar, session string
	value           []byte
}

// Seal makes a's stored form. The enrollment is read now and not kept.
func (as *AsideStore) Seal(a AsideEnrollment) (SealedAside, error) {
	if a.Enrollment == nil || a.Session == "" {
		return SealedAside{}, fmt.Errorf("%w: no enrollment or no session", ErrEnrollment)
	}
	aead := as.ring.sealer()
	ns := aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+8+8+a.Enrollment.Bytes()+aead.Overhead())
	out[0] = asideVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return SealedAside{}, fmt.Errorf("biometrics: nonce: %w", err)
	}
	plain := binary.LittleEndian.AppendUint64(out[1+ns:], uint64(a.ConsentAt.UnixNano()))
	plain = binary.LittleEndian.AppendUint64(plain, uint64(a.ClosedAt.UnixNano()))
	plain, err := a.Enrollment.AppendBinary(plain)
	if err != nil {
		return SealedAside{}, err
	}
	if len(plain) > MaxAsideBytes {
		return SealedAside{}, fmt.Errorf("%w: %d bytes, over the %d stored", ErrEnrollment, len(plain), MaxAsideBytes)
	}
	value := aead.Seal(out, out[1:1+ns], plain, associated(a.Avatar(), a.Session))
	return SealedAside{avatar: a.Avatar(), session: a.Session, value: value}, nil
}

// Put stores a sealed enrollment, replacing the session's earlier one, and
// returns the revision written, for Release.
func (as *AsideStore) Put(ctx context.Context, sa SealedAside) (uint64, error) {
	if sa.value == nil {
		return 0, fmt.Errorf("%w: not sealed", ErrEnrollment)
	}
	rev, err := as.bucket.Put(ctx, asideKey(sa.avatar, sa.session), sa.value)
	if err != nil {
		return 0, fmt.Errorf("biometrics: set aside the enrollment of session %q: %w", sa.session, err)
	}
	return rev, nil
}

func (as *AsideStore) open(avatarID, sessionID string, sealed []byte) (AsideEnrollment, error) {
	ns := as.ring.sealer().NonceSize()
	if len(sealed) < 1+ns+as.ring.sealer().Overhead() || sealed[0] != asideVersion {
		return AsideEnrollment{}, fmt.Errorf("%w: enrollment set aside for session %q", ErrSealed, sessionID)
	}
	plain, _, err := as.ring.open(sealed[1:1+ns], sealed[1+ns:], associated(avatarID, sessionID))
	if err != nil || len(plain) < 16 {
		return AsideEnrollment{}, fmt.Errorf("%w: enrollment set aside for session %q", ErrSealed, sessionID)
	}
	en, err := DecodeEnrollment(avatarID, plain[16:])
	if err != nil {
		return AsideEnrollment{}, err
	}
	return AsideEnrollment{
		Session: sessionID, Enrollment: en,
		ConsentAt: time.Unix(0, int64(binary.LittleEndian.Uint64(plain))).UTC(),
		ClosedAt:  time.Unix(0, int64(binary.LittleEndian.Uint64(plain[8:]))).UTC(),
	}, nil
}

// Claim takes the session's enrollment set aside out of the store, for
// this node alone: ok is false when there is none (or another node took
// it first). A value that does not open is removed and reported.
func (as *AsideStore) Claim(ctx context.Context, avatarID, sessionID string) (a AsideEnrollment, ok bool, err error) {
	key := asideKey(avatarID, sessionID)
	// A write that lands between the read and the delete (the session's
	// stream closing again elsewhere) fails the delete: read again.
	for range 3 {
		e, err := as.bucket.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return AsideEnrollment{}, false, nil
		}
		if err != nil {
			return AsideEnrollment{}, false, fmt.Errorf("biometrics: read the enrollment set aside for session %q: %w", sessionID, err)
		}
		a, openErr := as.open(avatarID, sessionID, e.Value)
		err = as.bucket.Delete(ctx, key, e.Revision)
		switch {
		case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return AsideEnrollment{}, false, fmt.Errorf("biometrics: take the enrollment set aside for session %q: %w", sessionID, err)
		case openErr != nil:
			return AsideEnrollment{}, false, openErr
		}
		return a, true, nil
	}
	return AsideEnrollment{}, false, nil
}

// Release removes the session's enrollment set aside if it is still the
// one written at rev, so that no other node takes it up: the node that
// set it aside goes on with it itself. ErrAsideTaken: it is not.
func (as *AsideStore) Release(ctx context.Context, avatarID, sessionID string, rev uint64) error {
	if rev == 0 {
		return fmt.Errorf("%w: no revision", ErrAsideTaken)
	}
	err := as.bucket.Delete(ctx, asideKey(avatarID, sessionID), rev)
	switch {
	case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: session %q", ErrAsideTaken, sessionID)
	case err != nil:
		return fmt.Errorf("biometrics: release the enrollment set aside for session %q: %w", sessionID, err)
	}
	return nil
}

// ForgetAvatar removes every enrollment set aside for the avatar's
// sessions: it deleted its template, and with it the consents given
// before.
func (as *AsideStore) ForgetAvatar(ctx context.Context, avatarID string) error {
	keys, err := as.bucket.KeysMatching(ctx, keyOf(avatarID)+".*")
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("biometrics: list the enrollments set aside for %q: %w", avatarID, err)
	}
	var errs []error
	for _, k := range keys {
		if err := as.bucket.Delete(ctx, k, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("biometrics: forget the enrollments set aside for %q: %w", avatarID, errors.Join(errs...))
	}
	return nil
}
