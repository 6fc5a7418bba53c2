package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

func TestCreateAuthenticate(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now})
	ctx := context.Background()

	token, created, err := m.Create(ctx, "av_1", Meta{Credential: "Y3JlZC0x", Node: "n1", UserAgent: "headset/1.0"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(token, TokenPrefix) || len(token) != TokenLen {
		t.Errorf("Create token = %d chars starting %q, want %d chars starting %q", len(token), token[:min(4, len(token))], TokenLen, TokenPrefix)
	}
	if !validID(created.ID) {
		t.Errorf("Create session ID = %q, want %d lowercase hex characters", created.ID, idLen)
	}
	if created.CSRF == "" {
		t.Error("Create gave no CSRF secret")
	}
	if want := clock.Now().Add(defaultLifetime); !created.Expires.Equal(want) {
		t.Errorf("Create Expires = %v, want %v", created.Expires, want)
	}

	got, err := m.Authenticate(ctx, token)
	if err != nil {
		t.Fatalf("Authenticate(new token): %v", err)
	}
	if got.ID != created.ID || got.Avatar != "av_1" || got.Credential != "Y3JlZC0x" || got.Node != "n1" || got.UserAgent != "headset/1.0" || got.CSRF != created.CSRF {
		t.Errorf("Authenticate = %+v, want %+v", got, created)
	}
	if s, err := m.Get(ctx, created.ID); err != nil || s.Avatar != "av_1" {
		t.Errorf("Get(%q) = %+v, %v; want the session of av_1", created.ID, s, err)
	}

	other, _, _ := newToken()
	cases := []struct {
		name, token string
	}{
		{"unknown well-formed token", other},
		{"first secret char changed", tamper(token, len(TokenPrefix))},
		{"middle char changed", tamper(token, TokenLen/2)},
		{"last char changed", tamper(token, TokenLen-1)},
		{"prefix changed", "zrx_" + token[len(TokenPrefix):]},
		{"truncated", token[:TokenLen-1]},
		{"extended", token + "A"},
		{"empty", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Authenticate(ctx, tc.token); !errors.Is(err, ErrInvalidSession) {
				t.Errorf("Authenticate(%s) error = %v, want ErrInvalidSession", tc.name, err)
			}
		})
	}
	// The original still works after all those attempts.
	if _, err := m.Authenticate(ctx, token); err != nil {
		t.Errorf("Authenticate(original) after failed attempts: %v", err)
	}
}

// tamper changes the character at i to another of the token alphabet.
func tamper(token string, i int) string {
	b := []byte(token)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// A record found by ID must still match the whole token hash: the ID is
// public, half the hash, and must not be enough.
func TestAuthenticateComparesWholeHash(t *testing.T) {
	m, _ := newTestManager(t, Config{})
	ctx := context.Background()
	token, s := mustCreate(t, m, "av_1")

	e, err := m.sessions.Get(ctx, s.ID)
	if err != nil {
		t.Fatalf("sessions.Get: %v", err)
	}
	rec, err := unmarshalRecord(e.Value)
	if err != nil {
		t.Fatalf("unmarshalRecord: %v", err)
	}
	rec.Hash[len(rec.Hash)-1] ^= 1 // same ID, different second half
	value, _ := rec.marshal()
	if _, err := m.sessions.Update(ctx, s.ID, value, e.Revision); err != nil {
		t.Fatalf("sessions.Update: %v", err)
	}
	if _, err := m.Authenticate(ctx, token); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("Authenticate with a record whose hash differs past the ID: error = %v, want ErrInvalidSession", err)
	}
}

// Malformed tokens must be refused before the store is asked: with the
// connection closed, any store access would fail with a connection error
// instead of ErrInvalidSession.
func TestMalformedTokenNoStoreAccess(t *testing.T) {
	m, nc := newTestManager(t, Config{})
	good, s := mustCreate(t, m, "av_1")
	nc.Close()
	ctx := context.Background()

	malformed := map[string]string{
		"empty":               "",
		"prefix only":         TokenPrefix,
		"no prefix":           good[len(TokenPrefix):],
		"bearer scheme kept":  "Bearer " + good,
		"wrong prefix":        "zrt_" + good[len(TokenPrefix):],
		"one short":           good[:TokenLen-1],
		"one long":            good + "A",
		"padding":             good[:TokenLen-1] + "=",
		"std alphabet":        good[:TokenLen-2] + "+A",
		"space":               good[:TokenLen-1] + " ",
		"non-canonical tail":  good[:TokenLen-1] + nonCanonicalTail(good[TokenLen-1]),
		"non-ASCII":           good[:TokenLen-2] + "é",
		"session ID":          s.ID,
		"prefixed session ID": TokenPrefix + s.ID,
	}
	for name, token := range malformed {
		t.Run(name, func(t *testing.T) {
			if _, err := m.Authenticate(ctx, token); !errors.Is(err, ErrInvalidSession) {
				t.Errorf("Authenticate(%q) error = %v, want ErrInvalidSession without store access", token, err)
			}
		})
	}
	// The check above can fail: a well-formed token does reach the store,
	// which is now unreachable.
	if _, err := m.Authenticate(ctx, good); err == nil || errors.Is(err, ErrInvalidSession) {
		t.Errorf("Authenticate(well-formed) on a closed connection: error = %v, want a store error", err)
	}
}

// nonCanonicalTail returns the last token character with one of its two
// unused low bits set, which a strict decoder refuses.
func nonCanonicalTail(last byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, last)
	return string(alphabet[i|1])
}

func TestExpiry(t *testing.T) {
	const (
		idle     = 30 * time.Minute
		lifetime = 2 * time.Hour
		touch    = time.Minute
	)
	type step struct {
		advance time.Duration
		wantErr error  // nil: authenticates
		reason  string // for ErrExpired
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"fresh", []step{{0, nil, ""}}},
		{"just before idle", []step{{idle - time.Second, nil, ""}}},
		{"idle", []step{{idle, ErrExpired, ReasonIdle}}},
		{"use keeps it alive", []step{
			{idle - time.Minute, nil, ""},
			{idle - time.Minute, nil, ""},
			{idle - time.Minute, nil, ""},
		}},
		{"idle after use", []step{
			{idle - time.Minute, nil, ""},
			{idle, ErrExpired, ReasonIdle},
		}},
		{"use never extends lifetime", []step{
			{idle - time.Minute, nil, ""},
			{idle - time.Minute, nil, ""},
			{idle - time.Minute, nil, ""},
			{idle - time.Minute, nil, ""},
			{lifetime - 4*(idle-time.Minute) - time.Second, nil, ""},
			{time.Second, ErrExpired, ReasonLifetime},
		}},
		// LastSeen is written only every TouchEvery, so idle time counts
		// from the last write: uses in between do not extend it.
		{"throttled touch bites early", []step{
			{touch - time.Second, nil, ""},
			{idle - touch + time.Second, ErrExpired, ReasonIdle},
		}},
	}
	m, _ := newTestManager(t, Config{IdleTimeout: idle, Lifetime: lifetime, TouchEvery: touch})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			m.now = clock.Now
			token, _ := mustCreate(t, m, "av_expiry")
			var elapsed time.Duration
			for i, st := range tc.steps {
				clock.Advance(st.advance)
				elapsed += st.advance
				_, err := m.Authenticate(context.Background(), token)
				if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
					t.Fatalf("step %d (+%v): Authenticate error = %v, want %v", i, elapsed, err, st.wantErr)
				}
				var se *Error
				if st.wantErr != nil && (!errors.As(err, &se) || se.Reason != st.reason) {
					t.Fatalf("step %d (+%v): Authenticate error = %v, want reason %q", i, elapsed, err, st.reason)
				}
			}
		})
	}
}

func TestTouchThrottlesWrites(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{TouchEvery: time.Minute, Now: clock.Now})
	ctx := context.Background()
	token, s := mustCreate(t, m, "av_touch")
	created := revision(t, m, s.ID)

	for range 20 {
		clock.Advance(2 * time.Second) // 40s in all: under TouchEvery
		if _, err := m.Authenticate(ctx, token); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
	}
	if got := revision(t, m, s.ID); got != created {
		t.Errorf("record revision after 20 uses within TouchEvery = %d, want %d (no write)", got, created)
	}

	clock.Advance(20 * time.Second) // one minute since creation
	got, err := m.Authenticate(ctx, token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if !got.LastSeen.Equal(clock.Now()) {
		t.Errorf("LastSeen after a touch = %v, want %v", got.LastSeen, clock.Now())
	}
	touched := revision(t, m, s.ID)
	if touched != created+1 {
		t.Errorf("record revision after TouchEvery = %d, want %d (one write)", touched, created+1)
	}
	for range 5 {
		if _, err := m.Authenticate(ctx, token); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
	}
	if got := revision(t, m, s.ID); got != touched {
		t.Errorf("record revision right after a touch = %d, want %d", got, touched)
	}
	stored, err := m.Get(ctx, s.ID)
	if err != nil || !stored.LastSeen.Equal(clock.Now()) || !stored.Expires.Equal(s.Expires) {
		t.Errorf("Get = LastSeen %v Expires %v (%v), want %v and %v", stored.LastSeen, stored.Expires, err, clock.Now(), s.Expires)
	}
}

// A touch that loses its compare-and-set to a revocation must report the
// revocation, not authenticate.
func TestTouchLosesToRevoke(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now})
	ctx := context.Background()
	_, s := mustCreate(t, m, "av_race")
	rec, rev, err := m.load(ctx, s.ID)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := m.Revoke(ctx, s.ID, "cloned credential"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if err := m.touch(ctx, s.ID, rec, rev, clock.Now()); !errors.Is(err, ErrRevoked) {
		t.Errorf("touch with a revision older than the revocation: error = %v, want ErrRevoked", err)
	}
	got, err := m.Get(ctx, s.ID)
	if err != nil || !got.Revoked || !got.LastSeen.Equal(s.LastSeen) {
		t.Errorf("Get after the lost touch = %+v, %v; want revoked, LastSeen %v", got, err, s.LastSeen)
	}
}

func TestRecordNeverHoldsToken(t *testing.T) {
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now})
	ctx := context.Background()
	token, s := mustCreate(t, m, "av_1")
	secret, err := tokenEncoding.DecodeString(token[len(TokenPrefix):])
	if err != nil {
		t.Fatalf("decode token: %v", err)
	}
	check := func(when string) {
		t.Helper()
		e, err := m.sessions.Get(ctx, s.ID)
		if err != nil {
			t.Fatalf("sessions.Get: %v", err)
		}
		forms := map[string][]byte{
			"token":                 []byte(token),
			"secret (base64url)":    []byte(token[len(TokenPrefix):]),
			"secret (raw)":          secret,
			"secret (std base64)":   []byte(base64.StdEncoding.EncodeToString(secret)),
			"secret (hex)":          []byte(hex.EncodeToString(secret)),
			"secret prefix (8 chr)": []byte(token[len(TokenPrefix) : len(TokenPrefix)+8]),
		}
		for name, form := range forms {
			if bytes.Contains(e.Value, form) {
				t.Errorf("%s: stored record contains the %s", when, name)
			}
		}
	}
	check("after Create")
	clock.Advance(2 * time.Minute)
	if _, err := m.Authenticate(ctx, token); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	check("after a touch")
	if err := m.Revoke(ctx, s.ID, "test"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	check("after Revoke")
}

func TestCheckCSRF(t *testing.T) {
	m, _ := newTestManager(t, Config{})
	_, a := mustCreate(t, m, "av_1")
	_, b := mustCreate(t, m, "av_1")
	if a.CSRF == b.CSRF {
		t.Fatalf("two sessions share the CSRF secret %q", a.CSRF)
	}
	cases := []struct {
		name  string
		sess  Session
		token string
		want  bool
	}{
		{"own secret", a, a.CSRF, true},
		{"another session's", a, b.CSRF, false},
		{"empty", a, "", false},
		{"prefix", a, a.CSRF[:10], false},
		{"session without a secret", Session{}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.CheckCSRF(tc.sess, tc.token); got != tc.want {
				t.Errorf("CheckCSRF(%q) = %v, want %v", tc.token, got, tc.want)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	nc := natstest.Connect(t, natstest.RunServer(t).ClientURL())
	st, err := store.New(context.Background(), nc, store.Config{RecordKey: testRecordKey})
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	bad := map[string]Config{
		"negative idle":              {IdleTimeout: -1},
		"negative lifetime":          {Lifetime: -time.Hour},
		"negative touch":             {TouchEvery: -time.Second},
		"touch as long as idle":      {IdleTimeout: time.Minute, TouchEvery: time.Minute},
		"default touch beyond idle":  {IdleTimeout: 30 * time.Second},
		"touch longer than defaults": {TouchEvery: time.Hour},
	}
	for name, cfg := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := New(context.Background(), st, cfg); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("New(%+v) error = %v, want ErrInvalidArgument", cfg, err)
			}
		})
	}
	if _, err := New(context.Background(), nil, Config{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("New(nil store) error = %v, want ErrInvalidArgument", err)
	}
	m, err := New(context.Background(), st, Config{})
	if err != nil {
		t.Fatalf("New(zero Config): %v", err)
	}
	if m.idle != defaultIdleTimeout || m.lifetime != defaultLifetime || m.touchEvery != defaultTouchEvery {
		t.Errorf("New(zero Config) = idle %v lifetime %v touch %v, want %v %v %v", m.idle, m.lifetime, m.touchEvery, defaultIdleTimeout, defaultLifetime, defaultTouchEvery)
	}
}

func TestCreateArguments(t *testing.T) {
	m, _ := newTestManager(t, Config{})
	ctx := context.Background()
	bad := map[string]struct {
		avatar string
		meta   Meta
	}{
		"empty avatar":    {"", Meta{}},
		"long avatar":     {strings.Repeat("a", maxAvatarLen+1), Meta{}},
		"long credential": {"av_1", Meta{Credential: strings.Repeat("c", maxCredentialLen+1)}},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			if _, _, err := m.Create(ctx, tc.avatar, tc.meta); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("Create(%q) error = %v, want ErrInvalidArgument", name, err)
			}
		})
	}
	// Avatar IDs are the avatar package's; any bytes are fine here.
	for _, avatar := range []string{"av.with.dots", "user@example.org", "ünïcødé", "a b*c>"} {
		token, _, err := m.Create(ctx, avatar, Meta{UserAgent: strings.Repeat("ü", 300)})
		if err != nil {
			t.Fatalf("Create(%q): %v", avatar, err)
		}
		s, err := m.Authenticate(ctx, token)
		if err != nil || s.Avatar != avatar {
			t.Errorf("Authenticate = %q, %v; want avatar %q", s.Avatar, err, avatar)
		}
		if len(s.UserAgent) > maxUserAgentLen || !utf8.ValidString(s.UserAgent) {
			t.Errorf("UserAgent of %d bytes (valid UTF-8: %v), want at most %d, valid", len(s.UserAgent), utf8.ValidString(s.UserAgent), maxUserAgentLen)
		}
		if list, err := m.List(ctx, avatar); err != nil || len(list) != 1 {
			t.Errorf("List(%q) = %d sessions, %v; want 1", avatar, len(list), err)
		}
	}
}

// Concurrent sign-ins of one avatar all land in its index.
func TestConcurrentCreateSameAvatar(t *testing.T) {
	srvM, nc := newTestManager(t, Config{})
	other := newManagerOn(t, nc, Config{})
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		m := srvM
		if i%2 == 1 {
			m = other
		}
		wg.Go(func() {
			_, s, err := m.Create(ctx, "av_busy", Meta{})
			if err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			ids[i] = s.ID
		})
	}
	wg.Wait()
	list, err := srvM.List(ctx, "av_busy")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != n {
		t.Errorf("List after %d concurrent Creates = %d sessions, want %d", n, len(list), n)
	}
	if got, err := other.RevokeAvatar(ctx, "av_busy", "test"); err != nil || got != n {
		t.Errorf("RevokeAvatar = %d, %v; want %d, nil", got, err, n)
	}
}

func TestTooManySessions(t *testing.T) {
	if testing.Short() {
		t.Skip("creates MaxPerAvatar sessions")
	}
	clock := newFakeClock()
	m, _ := newTestManager(t, Config{Now: clock.Now, Lifetime: time.Hour})
	ctx := context.Background()
	for range MaxPerAvatar {
		mustCreate(t, m, "av_many")
	}
	if _, _, err := m.Create(ctx, "av_many", Meta{}); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("Create beyond MaxPerAvatar: error = %v, want ErrTooManySessions", err)
	}
	if _, _, err := m.Create(ctx, "av_other", Meta{}); err != nil {
		t.Errorf("Create for another avatar: %v", err)
	}
	clock.Advance(time.Hour) // all of av_many's sessions reach their lifetime
	if _, _, err := m.Create(ctx, "av_many", Meta{}); err != nil {
		t.Fatalf("Create after the old sessions expired: %v", err)
	}
	entries, _, err := m.readIndex(ctx, "av_many")
	if err != nil || len(entries) != 1 {
		t.Errorf("index after pruning = %d entries, %v; want 1", len(entries), err)
	}
}
