package avatar

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Ceremony is a begun WebAuthn ceremony: the id to finish it with, and the
// options for the browser.
type Ceremony struct {
	ID string
	// Options is the standard {"publicKey": {...}} JSON, as
	// PublicKeyCredential.parseCreationOptionsFromJSON and
	// parseRequestOptionsFromJSON (or navigator.credentials.create/get
	// after decoding) take it.
	Options json.RawMessage
}

type ceremonyKind string

const (
	kindRegistration ceremonyKind = "registration"
	kindLogin        ceremonyKind = "login"
	kindStepUp       ceremonyKind = "step-up"
)

// ceremonyState is what the ceremonies bucket keeps between begin and
// finish. It never leaves the server.
type ceremonyState struct {
	Kind ceremonyKind `json:"kind"`
	// AvatarID: the avatar registering (new or existing), signing in by
	// name or stepping up; empty for a discoverable sign-in.
	AvatarID string `json:"avatar_id,omitempty"`
	// NewAvatar, Name, DisplayName: a registration that creates the avatar.
	NewAvatar    bool                 `json:"new_avatar,omitempty"`
	Name         string               `json:"name,omitempty"`
	DisplayName  string               `json:"display_name,omitempty"`
	ActionDigest []byte               `json:"action_digest,omitempty"`
	Nonce        []byte               `json:"nonce,omitempty"`
	Begun        time.Time            `json:"begun"`
	Expires      time.Time            `json:"expires"`
	Session      webauthn.SessionData `json:"session"`
}

const ceremonyIDBytes = 18

func newCeremonyID() string {
	b := make([]byte, ceremonyIDBytes)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func validCeremonyID(id string) bool {
	b, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil && len(b) == ceremonyIDBytes && len(id) == base64.RawURLEncoding.EncodedLen(ceremonyIDBytes)
}

// saveCeremony stores a begun ceremony with the library's session data
// and returns it with the options the browser is given.
func (s *Service) saveCeremony(ctx context.Context, st *ceremonyState, session *webauthn.SessionData, browserOptions any) (Ceremony, error) {
	st.Session = *session
	options, err := s.optionsJSON(browserOptions)
	if err != nil {
		return Ceremony{}, err
	}
	st.Begun = s.now()
	st.Expires = st.Begun.Add(s.cfg.CeremonyTTL)
	data, err := json.Marshal(st)
	if err != nil {
		return Ceremony{}, fmt.Errorf("avatar: encode ceremony: %w", err)
	}
	id := newCeremonyID()
	rev, err := s.ceremonies.Create(ctx, id, data)
	if err != nil {
		return Ceremony{}, fmt.Errorf("avatar: save ceremony: %w", err)
	}
	s.begun.put(id, st, rev)
	return Ceremony{ID: id, Options: options}, nil
}

// takeCeremony consumes a ceremony: it reads it and deletes it at the
// revision read, so of two finishes racing for one ceremony exactly one
// gets it, on any node. A ceremony is spent by any finish that reaches
// it, whether that finish then succeeds or not.
func (s *Service) takeCeremony(ctx context.Context, id string, kind ceremonyKind) (*ceremonyState, error) {
	if !validCeremonyID(id) {
		return nil, fmt.Errorf("%w: malformed ceremony id %q", ErrCeremonyNotFound, id)
	}
	// The bucket stays the arbiter of single use: the delete at the
	// revision this node wrote (or read) fails if any node consumed the
	// ceremony first. The local copy only saves reading it back.
	st, rev, ok := s.begun.take(id)
	if !ok {
		e, err := s.ceremonies.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrCeremonyNotFound, id)
		}
		if err != nil {
			return nil, fmt.Errorf("avatar: ceremony %s: %w", id, err)
		}
		st, rev = new(ceremonyState), e.Revision
		if err := json.Unmarshal(e.Value, st); err != nil {
			return nil, fmt.Errorf("avatar: ceremony %s is corrupt: %w", id, err)
		}
	}
	if err := s.ceremonies.Delete(ctx, id, rev); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s was finished already", ErrCeremonyNotFound, id)
		}
		return nil, fmt.Errorf("avatar: consume ceremony %s: %w", id, err)
	}
	// The bucket's TTL removes old ceremonies eventually; the stored
	// expiry is what decides, on this node's clock.
	if now := s.now(); !now.Before(st.Expires) {
		return nil, fmt.Errorf("%w: %s expired at %s", ErrCeremonyNotFound, id, st.Expires.Format(time.RFC3339))
	}
	if st.Kind != kind {
		return nil, fmt.Errorf("%w: ceremony %s is a %s, not a %s", ErrCeremonyMismatch, id, st.Kind, kind)
	}
	return st, nil
}

// localCeremonies is a node's copy of the ceremonies it began, with the
// bucket revision each was written at. Entries leave when finished here or
// when a sweep finds them expired (a ceremony finished on another node, or
// abandoned).
type localCeremonies struct {
	mu      sync.Mutex
	entries map[string]localCeremony
	puts    int
}

type localCeremony struct {
	state *ceremonyState
	rev   uint64
}

// sweepEvery bounds the work of forgetting expired entries: one sweep per
// this many ceremonies begun.
const sweepEvery = 1024

func (l *localCeremonies) put(id string, st *ceremonyState, rev uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[string]localCeremony{}
	}
	l.entries[id] = localCeremony{state: st, rev: rev}
	if l.puts++; l.puts%sweepEvery == 0 {
		for k, e := range l.entries {
			if time.Now().After(e.state.Expires) {
				delete(l.entries, k)
			}
		}
	}
}

func (l *localCeremonies) take(id string) (*ceremonyState, uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[id]
	if ok {
		delete(l.entries, id)
	}
	return e.state, e.rev, ok
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
