package keyfile

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Size is the length of every key this package handles: 32 bytes, written
// as 64 hex digits.
const Size = 32

// ErrMismatch reports a key other than the one whose check value the
// bucket holds.
var ErrMismatch = errors.New("keyfile: this key is not the one the cluster uses")

// ErrMalformed reports a key file that is not 64 hex digits.
var ErrMalformed = errors.New("keyfile: not 64 hex digits (a 32-byte key)")

// LoadOrCreate reads the key in the file p, creating it (32 random bytes,
// hex, mode 0600) when the file does not exist. what names the key in
// errors ("template key"). The key is never logged.
func LoadOrCreate(p, what string) ([]byte, error) {
	return loadOrCreate(p, what, Parse)
}

// LoadRingOrCreate reads the key ring in the file p (see ParseRing),
// creating a ring of one new key when the file does not exist.
func LoadRingOrCreate(p, what string) ([][]byte, error) {
	return loadOrCreate(p, what, ParseRing)
}

// ErrNotPrivate reports a key file that users other than its owner and
// group may read or write: anyone on the machine could take the key.
var ErrNotPrivate = errors.New("keyfile: the key file is open to every user of the machine")

func loadOrCreate[K any](p, what string, parse func([]byte, string) (K, error)) (K, error) {
	var none K
	b, err := os.ReadFile(p)
	if err == nil {
		if err := CheckPrivate(p); err != nil {
			return none, err
		}
		return parse(b, p)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return none, fmt.Errorf("read %s: %w", what, err)
	}
	key, err := NewKey()
	if err != nil {
		return none, fmt.Errorf("%s: %w", what, err)
	}
	content := []byte(hex.EncodeToString(key) + "\n")
	// O_EXCL: two processes starting at once must not each write their own.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadOrCreate(p, what, parse)
	}
	if err != nil {
		return none, fmt.Errorf("write %s: %w", what, err)
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return none, fmt.Errorf("write %s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return none, fmt.Errorf("write %s: %w", what, err)
	}
	return parse(content, p)
}

// CheckPrivate refuses a file of secrets that others than its owner and
// group may read or write, as OpenSSH refuses a private key: a copy made
// with a default umask (0644) would otherwise serve the cluster's key to
// every account on the machine. A group may read it (0640), for a
// service group.
func CheckPrivate(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	if mode := st.Mode().Perm(); mode&0o007 != 0 {
		return fmt.Errorf("%s: %w (mode %04o): chmod 600 %s", p, ErrNotPrivate, mode, p)
	}
	return nil
}

// Parse reads a key file's content; name is the file, for the error.
func Parse(content []byte, name string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(content)))
	if err != nil || len(key) != Size {
		return nil, fmt.Errorf("%s: %w: restore it from a backup or from another node of the cluster", name, ErrMalformed)
	}
	return key, nil
}

// ErrRingMalformed reports a key ring file with a line that is not a key,
// no key at all, or one key twice.
var ErrRingMalformed = errors.New("keyfile: a key ring is one or more lines of 64 hex digits, each key once")

// ParseRing reads a key ring: one key (64 hex digits) a line, the first
// the one that seals, the others only opening what they sealed before a
// rotation. Blank lines and lines starting with # are skipped, so that an
// operator may note when each key came. A file of one key, as
// LoadOrCreate writes it, is a ring of one.
func ParseRing(content []byte, name string) ([][]byte, error) {
	var ring [][]byte
	for n, line := range strings.Split(string(content), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := hex.DecodeString(line)
		if err != nil || len(key) != Size {
			return nil, fmt.Errorf("%s, line %d: %w", name, n+1, ErrRingMalformed)
		}
		for _, k := range ring {
			if hmac.Equal(k, key) {
				return nil, fmt.Errorf("%s, line %d: %w (the key is there twice)", name, n+1, ErrRingMalformed)
			}
		}
		ring = append(ring, key)
	}
	if len(ring) == 0 {
		return nil, fmt.Errorf("%s: %w (it holds none): restore it from a backup or from another node of the cluster", name, ErrRingMalformed)
	}
	return ring, nil
}

// CheckValue is the HMAC-SHA256 of label under key.
func CheckValue(key []byte, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// Check records key's check value under checkKey in b if it has none, and
// otherwise compares it with the one stored: ErrMismatch when they differ.
// It is CheckRing for a key that never rotates.
func Check(ctx context.Context, b *store.Bucket, checkKey string, key []byte, label string) error {
	_, err := CheckRing(ctx, b, checkKey, [][]byte{key}, label)
	if errors.Is(err, ErrRetired) {
		return ErrMismatch
	}
	return err
}

// ErrRetired reports a ring whose first key, the one it would seal with,
// is one the cluster has rotated away from.
var ErrRetired = errors.New("keyfile: this ring seals with a key the cluster retired")

// maxRetired bounds how many retired keys' check values a ring's record
// remembers, so that none of them is taken up again by mistake.
const maxRetired = 16

// CheckRing is Check for a key ring (ParseRing): the value under checkKey
// is the check value of the key the cluster seals with, then those of the
// keys it sealed with before, newest first. A ring passes when its first
// key is the cluster's. It rotates the cluster to its first key when that
// key is new and another key of the ring is the cluster's: every node that
// starts from then on must seal with the new key (the ring of a node that
// would seal with a retired one fails with ErrRetired), and may still hold
// the old one to open what it sealed. rotated reports that this call made
// the rotation. A ring that holds none of the cluster's keys fails with
// ErrMismatch. The first ring to check records its first key.
func CheckRing(ctx context.Context, b *store.Bucket, checkKey string, ring [][]byte, label string) (rotated bool, err error) {
	if len(ring) == 0 {
		return false, ErrRingMalformed
	}
	first := CheckValue(ring[0], label)
	for {
		_, err := b.Create(ctx, checkKey, first)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return false, fmt.Errorf("record the key's check value in %s: %w", b.Name(), err)
		}
		e, err := b.Get(ctx, checkKey)
		if err != nil {
			return false, fmt.Errorf("read the key's check value in %s: %w", b.Name(), err)
		}
		next, err := nextRecord(e.Value, ring, label)
		if err != nil {
			return false, fmt.Errorf("%w (the check values in %s)", err, b.Name())
		}
		if next == nil {
			return false, nil
		}
		_, err = b.Update(ctx, checkKey, next, e.Revision)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return false, fmt.Errorf("record the rotated key's check value in %s: %w", b.Name(), err)
		}
		// Another node rotated at the same time: read what it recorded.
	}
}

// errRecordMalformed reports a check value record that is no list of
// check values: written by something other than a node.
var errRecordMalformed = errors.New("keyfile: the key's check value record is no list of check values")

// nextRecord decides what a ring makes of the cluster's check value
// record: nil when its first key is the cluster's, the record rotated to
// its first key when that key is new and another of the ring's keys is
// the cluster's, or why the ring may not seal (ErrRetired, ErrMismatch,
// or a record that is not one). The record comes from NATS, where anyone
// who reaches it may have written it: it is parsed here and nowhere else.
func nextRecord(record []byte, ring [][]byte, label string) ([]byte, error) {
	if len(record) == 0 || len(record)%sha256.Size != 0 {
		return nil, fmt.Errorf("%w: %d bytes", errRecordMalformed, len(record))
	}
	first := CheckValue(ring[0], label)
	if hmac.Equal(record[:sha256.Size], first) {
		return nil, nil
	}
	for off := sha256.Size; off < len(record); off += sha256.Size {
		if hmac.Equal(record[off:off+sha256.Size], first) {
			return nil, ErrRetired
		}
	}
	holds := false
	for _, k := range ring[1:] {
		holds = holds || hmac.Equal(CheckValue(k, label), record[:sha256.Size])
	}
	if !holds {
		return nil, ErrMismatch
	}
	next := append(append(make([]byte, 0, len(record)+sha256.Size), first...), record...)
	return next[:min(len(next), (1+maxRetired)*sha256.Size)], nil
}

// keyIDLabel derives a key's id (KeyID), apart from its check value.
const keyIDLabel = "zerorealm/key-id/v1"

// KeyID names a key without revealing it: 8 bytes of an HMAC of a label
// of its own under the key, in hex. Operators compare ids to see that
// every node's file holds the same keys in the same order.
func KeyID(key []byte) string { return hex.EncodeToString(CheckValue(key, keyIDLabel)[:8]) }

// NewKey is a new random key.
func NewKey() ([]byte, error) {
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("keyfile: new key: %w", err)
	}
	return key, nil
}

// WriteRing replaces the file p with ring, one key a line, the first the
// one that seals, each after a comment with its id and role. It writes a
// new file beside p (mode 0600) and renames it over p, so that a node
// starting meanwhile reads the old ring or the new one, never half of one.
func WriteRing(p string, ring [][]byte) error {
	if len(ring) == 0 {
		return ErrRingMalformed
	}
	var b strings.Builder
	for i, k := range ring {
		if len(k) != Size {
			return fmt.Errorf("%w: a key of %d bytes", ErrRingMalformed, len(k))
		}
		role := "seals and opens"
		if i > 0 {
			role = "opens only"
		}
		fmt.Fprintf(&b, "# key %s: %s\n%s\n", KeyID(k), role, hex.EncodeToString(k))
	}
	if err := WriteSecret(p, []byte(b.String())); err != nil {
		return fmt.Errorf("keyfile: write %s: %w", p, err)
	}
	return nil
}

// WriteSecret replaces path with data, mode 0600, through a temporary file
// beside it: a reader never sees half a key, and an existing file's looser
// mode is not kept.
func WriteSecret(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; left behind otherwise
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
