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
	b, err := os.ReadFile(p)
	if err == nil {
		return Parse(b, p)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// O_EXCL: two processes starting at once must not each write their own.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreate(p, what)
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", what, err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", what, err)
	}
	return key, nil
}

// Parse reads a key file's content; name is the file, for the error.
func Parse(content []byte, name string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(content)))
	if err != nil || len(key) != Size {
		return nil, fmt.Errorf("%s: %w: restore it from a backup or from another node of the cluster", name, ErrMalformed)
	}
	return key, nil
}

// CheckValue is the HMAC-SHA256 of label under key.
func CheckValue(key []byte, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// Check records key's check value under checkKey in b if it has none, and
// otherwise compares it with the one stored: ErrMismatch when they differ.
func Check(ctx context.Context, b *store.Bucket, checkKey string, key []byte, label string) error {
	check := CheckValue(key, label)
	_, err := b.Create(ctx, checkKey, check)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("record the key's check value in %s: %w", b.Name(), err)
	}
	e, err := b.Get(ctx, checkKey)
	if err != nil {
		return fmt.Errorf("read the key's check value in %s: %w", b.Name(), err)
	}
	if !hmac.Equal(e.Value, check) {
		return ErrMismatch
	}
	return nil
}
