package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// maxIndexAttempts bounds the compare-and-set retries on one avatar's
// index. Only concurrent sign-ins of the same avatar contend, so a handful
// of rounds settles it; more means something is wrong.
const maxIndexAttempts = 32

// indexEntry is one session in its avatar's index. Expires lets writers
// prune without reading the records.
type indexEntry struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"exp"`
}

// indexKey makes any avatar ID a valid key: avatar IDs belong to the
// avatar package and may use characters keys may not.
func indexKey(avatarID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(avatarID))
}

// addToIndex appends id to avatarID's index, dropping entries past their
// lifetime, with compare-and-set so that concurrent sign-ins on any nodes
// all land.
func (m *Manager) addToIndex(ctx context.Context, avatarID, id string, expires time.Time) error {
	key := indexKey(avatarID)
	for attempt := 1; ; attempt++ {
		entries, rev, err := m.readIndex(ctx, avatarID)
		if err != nil {
			return err
		}
		now := m.now()
		live := entries[:0]
		for _, e := range entries {
			if now.Before(e.Expires) {
				live = append(live, e)
			}
		}
		if len(live) >= MaxPerAvatar {
			return fmt.Errorf("%w: avatar %q holds %d", ErrTooManySessions, avatarID, len(live))
		}
		value, err := json.Marshal(append(live, indexEntry{ID: id, Expires: expires}))
		if err != nil {
			return fmt.Errorf("session: encode index of %q: %w", avatarID, err)
		}
		if rev == 0 {
			_, err = m.index.Create(ctx, key, value)
		} else {
			_, err = m.index.Update(ctx, key, value, rev)
		}
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, store.ErrConflict) || attempt == maxIndexAttempts:
			return fmt.Errorf("session: index of %q: %w", avatarID, err)
		case ctx.Err() != nil:
			return fmt.Errorf("session: index of %q: %w", avatarID, ctx.Err())
		}
	}
}

// readIndex returns avatarID's index entries and the revision they were
// read at (0 when the avatar has none).
func (m *Manager) readIndex(ctx context.Context, avatarID string) ([]indexEntry, uint64, error) {
	e, err := m.index.Get(ctx, indexKey(avatarID))
	if errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTampered) {
		return nil, 0, nil
	}
	// An index that does not verify is not an empty one: "sign out
	// everywhere" must fail, not report that there was nothing to revoke.
	if err != nil {
		return nil, 0, fmt.Errorf("session: index of %q: %w", avatarID, err)
	}
	var entries []indexEntry
	if err := json.Unmarshal(e.Value, &entries); err != nil {
		return nil, 0, fmt.Errorf("session: index of %q: decode: %w", avatarID, err)
	}
	return entries, e.Revision, nil
}
