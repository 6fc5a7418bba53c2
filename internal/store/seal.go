package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/zerorealm/zerorealm/internal/keyedmac"
)

// Sealing: the realm assumes that whoever reaches NATS may write any
// bucket or stream. A sealed bucket or stream carries, with every value or
// message, an HMAC-SHA256 tag under a key derived from the cluster's
// record key, which never enters NATS. Reads verify the tag, so a forged
// or altered record reads as absent (ErrNotFound and ErrTampered) and is
// reported once through Config.OnTamper.
//
// What a tag binds:
//   - a value: a domain label, the bucket's name without the prefix, the
//     key, the writer's time and the value. A value moved to another key
//     or bucket does not verify. The prefix is left out: it separates
//     deployments that share one NATS account, and those have different
//     record keys (each cluster creates its own), so binding it would add
//     nothing and would make renaming the prefix a break.
//   - a message: a domain label, the stream's name without the prefix, the
//     relative subject, the message id (Nats-Msg-Id, empty when none), the
//     subject's last sequence the append expected, and the data. Other
//     headers are not covered; sealed streams carry none that decide
//     anything.
//
// Neither can bind its own revision or sequence: the server assigns them
// after the tag is computed. So a genuine record put back verifies on its
// own; what refuses it is its place in time: a value's writer's time
// against the server's time of storing it (Config.MaxClockSkew), and a
// message's expected predecessor against the last message a Follower saw
// on its subject. See docs/architecture.md "Records are sealed".

// ErrTampered reports a sealed value or message whose tag is missing or
// does not verify. Errors that carry it also carry ErrNotFound, so callers
// that treat a missing record as absent do the same with a forged one.
var ErrTampered = errors.New("store: record does not verify")

// RecordKeySize is the length of Config.RecordKey.
const RecordKeySize = 32

// SealHeader carries a sealed message's tag (see sealMsg).
const SealHeader = "Zerorealm-Seal"

const (
	sealVersion = 1
	sealTagSize = sha256.Size
	// sealTagEncoded is the tag's length in unpadded base64url.
	sealTagEncoded = (sealTagSize*8 + 5) / 6
	// a version byte, the writer's time, the tag
	sealedOverhead = 1 + 8 + sealTagSize
	kvSealLabel    = "zerorealm/store/kv/v1"
	msgSealLabel   = "zerorealm/store/msg/v1"
	sealKeyInfo    = "zerorealm/store-seal/v1"
	sealHeaderV1   = "v1."
	// maxTamperReports bounds the memory that remembers which tampered
	// records were reported; when full it starts afresh, which only
	// reports some of them again.
	maxTamperReports = 4096
)

// Tamper reasons.
const (
	ReasonNoSeal     = "no seal"
	ReasonBadSeal    = "malformed seal"
	ReasonSealDiffer = "seal does not verify"
	// ReasonReplayed: a genuine record in the wrong place in time: a
	// bucket value stored long after it was written, or a message that
	// does not follow the message it was appended after.
	ReasonReplayed = "genuine record replayed"
)

// TamperEvent describes a sealed record that did not verify.
type TamperEvent struct {
	// Bucket or Stream names where it was read (without the prefix).
	Bucket string
	Stream string
	// Key is the bucket's key, or the stream message's relative subject.
	Key string
	// Revision is the key's revision or the message's stream sequence.
	Revision uint64
	// Reason is one of the Reason constants.
	Reason string
}

// sealer computes and checks tags.
type sealer struct {
	key *keyedmac.Key

	onTamper func(TamperEvent)
	mu       sync.Mutex
	reported map[TamperEvent]struct{}
}

func newSealer(recordKey []byte, onTamper func(TamperEvent)) (*sealer, error) {
	if len(recordKey) != RecordKeySize {
		return nil, fmt.Errorf("%w: record key of %d bytes, want %d", ErrInvalid, len(recordKey), RecordKeySize)
	}
	// A key of its own: the record key's check value, or any other use of
	// it, is then no oracle for tags.
	key, err := keyedmac.Derive(recordKey, sealKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("store: derive the seal key: %w", err)
	}
	return &sealer{key: key, onTamper: onTamper, reported: map[TamperEvent]struct{}{}}, nil
}

// tag appends to dst the tag of label, the names and data. The store's
// validation keeps 0 bytes out of names, and a time is 8 bytes of fixed
// length at the end, so the encoding stays injective.
func (s *sealer) tag(dst []byte, label string, data []byte, names ...string) []byte {
	return s.key.Tag(dst, label, data, names...)
}

// sealValue returns the stored form of a bucket value: a version byte,
// the writer's time (Unix milliseconds, big-endian), the tag, the value.
func (s *sealer) sealValue(bucket, key string, value []byte, now time.Time) []byte {
	out := make([]byte, sealedOverhead, sealedOverhead+len(value))
	out[0] = sealVersion
	binary.BigEndian.PutUint64(out[1:9], uint64(now.UnixMilli()))
	s.tag(out[9:9], kvSealLabel, value, bucket, key, unsafeString(out[1:9]))
	return append(out, value...)
}

// openValue checks a stored bucket value and returns what was sealed, or
// the reason it does not verify. stored is when the server stored it: a
// genuine value put back later than skew after it was written is refused
// as replayed.
func (s *sealer) openValue(bucket, key string, raw []byte, stored time.Time, skew time.Duration) ([]byte, string) {
	if len(raw) < sealedOverhead || raw[0] != sealVersion {
		return nil, ReasonNoSeal
	}
	value := raw[sealedOverhead:]
	var buf [sealTagSize]byte
	want := s.tag(buf[:0], kvSealLabel, value, bucket, key, unsafeString(raw[1:9]))
	if !hmac.Equal(want, raw[9:sealedOverhead]) {
		return nil, ReasonSealDiffer
	}
	written := time.UnixMilli(int64(binary.BigEndian.Uint64(raw[1:9])))
	if !stored.IsZero() && stored.Sub(written) > skew {
		return nil, ReasonReplayed
	}
	return value, ""
}

// noPredecessor is a seal's predecessor for an append that expected none.
const noPredecessor = "-"

// sealMsg returns the seal header's value for a message: "v1.", the
// sequence of the subject's last message the append expected (or "-"),
// ".", the base64url tag.
func (s *sealer) sealMsg(stream, subject, msgID, last string, data []byte) string {
	var buf [sealTagSize]byte
	if last == "" {
		last = noPredecessor
	}
	var enc [sealTagEncoded]byte
	base64.RawURLEncoding.Encode(enc[:], s.tag(buf[:0], msgSealLabel, data, stream, subject, msgID, last))
	h := make([]byte, 0, len(sealHeaderV1)+len(last)+1+sealTagEncoded)
	h = append(append(append(append(h, sealHeaderV1...), last...), '.'), enc[:]...)
	return string(h)
}

// openMsg checks a stored message's seal header and returns the
// predecessor it was sealed with (noPredecessor for none).
func (s *sealer) openMsg(stream, subject, msgID, header string, data []byte) (string, string) {
	if header == "" {
		return "", ReasonNoSeal
	}
	rest, ok := strings.CutPrefix(header, sealHeaderV1)
	if !ok {
		return "", ReasonBadSeal
	}
	last, enc, ok := strings.Cut(rest, ".")
	if !ok || !validPredecessor(last) || len(enc) != sealTagEncoded {
		return "", ReasonBadSeal
	}
	var src [sealTagEncoded]byte
	copy(src[:], enc)
	var got [sealTagSize + 2]byte // room for the decoder's estimate
	if n, err := base64.RawURLEncoding.Strict().Decode(got[:], src[:]); err != nil || n != sealTagSize {
		return "", ReasonBadSeal
	}
	var buf [sealTagSize]byte
	if !hmac.Equal(s.tag(buf[:0], msgSealLabel, data, stream, subject, msgID, last), got[:sealTagSize]) {
		return "", ReasonSealDiffer
	}
	return last, ""
}

// unsafeString views b as a string without copying; b must not change
// while the string is used (here: only within one tag computation).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// validPredecessor accepts "-" or a decimal sequence in canonical form
// (no sign, no leading zero), so one predecessor has one spelling.
func validPredecessor(last string) bool {
	if last == noPredecessor {
		return true
	}
	if last == "" || len(last) > 20 || (len(last) > 1 && last[0] == '0') {
		return false
	}
	_, err := strconv.ParseUint(last, 10, 64)
	return err == nil
}

// report logs ev and hands it to the hook the first time it is seen.
func (s *sealer) report(ev TamperEvent, log *slog.Logger) {
	s.mu.Lock()
	_, seen := s.reported[ev]
	if !seen {
		if len(s.reported) >= maxTamperReports {
			s.reported = map[TamperEvent]struct{}{}
		}
		s.reported[ev] = struct{}{}
	}
	s.mu.Unlock()
	if seen {
		return
	}
	log.Warn("sealed record does not verify: refused as absent (forged, altered, or written before the store was sealed)",
		"bucket", ev.Bucket, "stream", ev.Stream, "key", ev.Key, "revision", ev.Revision, "reason", ev.Reason)
	if s.onTamper != nil {
		s.onTamper(ev)
	}
}

// tampered is the error a read of a record that does not verify returns.
func tampered(what string, ev TamperEvent) error {
	where := ev.Key
	if ev.Revision != 0 {
		where += " revision " + strconv.FormatUint(ev.Revision, 10)
	}
	return fmt.Errorf("%s: %w: %w (%s: %s)", what, ErrNotFound, ErrTampered, where, ev.Reason)
}
