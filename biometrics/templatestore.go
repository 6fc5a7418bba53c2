package biometrics

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/zerorealm/zerorealm/internal/store"
)

// TemplateBucket is the KV bucket that holds the encrypted templates.
const TemplateBucket = "templates"

// sealedVersion prefixes every stored value, so that the sealing can change
// (another cipher, a rotated key) without guessing at old values.
const sealedVersion = 1

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
	aead   cipher.AEAD
}

// NewTemplateStore declares the templates bucket. key is never logged or
// stored by this package.
func NewTemplateStore(ctx context.Context, st *store.Store, key []byte) (*TemplateStore, error) {
	if len(key) != 32 {
		return nil, ErrTemplateKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("biometrics: template cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("biometrics: template cipher: %w", err)
	}
	b, err := st.Bucket(ctx, store.BucketConfig{Name: TemplateBucket, MaxValueSize: 64 << 10})
	if err != nil {
		return nil, fmt.Errorf("biometrics: template store: %w", err)
	}
	return &TemplateStore{bucket: b, aead: aead}, nil
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
	return ts.open(avatarID, e.Value)
}

func (ts *TemplateStore) open(avatarID string, sealed []byte) (*Template, error) {
	ns := ts.aead.NonceSize()
	if len(sealed) < 1+ns || sealed[0] != sealedVersion {
		return nil, fmt.Errorf("%w: template of %q", ErrSealed, avatarID)
	}
	plain, err := ts.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(avatarID))
	if err != nil {
		return nil, fmt.Errorf("%w: template of %q", ErrSealed, avatarID)
	}
	var t Template
	if err := t.UnmarshalBinary(plain); err != nil {
		return nil, fmt.Errorf("biometrics: template of %q: %w", avatarID, err)
	}
	return &t, nil
}

// Put stores the avatar's template, replacing any earlier one.
func (ts *TemplateStore) Put(ctx context.Context, avatarID string, t *Template) error {
	plain, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	nonce := make([]byte, ts.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("biometrics: nonce: %w", err)
	}
	sealed := append([]byte{sealedVersion}, nonce...)
	sealed = ts.aead.Seal(sealed, nonce, plain, []byte(avatarID))
	if _, err := ts.bucket.Put(ctx, keyOf(avatarID), sealed); err != nil {
		return fmt.Errorf("biometrics: put template of %q: %w", avatarID, err)
	}
	return nil
}

// Delete removes the avatar's template (the realm checks the step-up that
// authorizes it). Deleting a template that does not exist is not an error.
func (ts *TemplateStore) Delete(ctx context.Context, avatarID string) error {
	if err := ts.bucket.Delete(ctx, keyOf(avatarID), 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("biometrics: delete template of %q: %w", avatarID, err)
	}
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
