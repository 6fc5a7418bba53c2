package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/zerorealm/zerorealm/internal/natstest"
)

func TestNewConfig(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())

	s := newTestStore(t, nc, Config{})
	if got, want := s.Prefix(), "zr"; got != want {
		t.Errorf("Prefix() = %q, want %q", got, want)
	}
	if got, want := s.Replicas(), 1; got != want {
		t.Errorf("Replicas() on one server = %d, want %d", got, want)
	}
	if got, want := s.timeout, 5*time.Second; got != want {
		t.Errorf("default timeout = %v, want %v", got, want)
	}
	if s.JetStream() == nil {
		t.Errorf("JetStream() = nil")
	}

	bad := []struct {
		name string
		cfg  Config
	}{
		{"dotted prefix", Config{Prefix: "z.r"}},
		{"wildcard prefix", Config{Prefix: "zr*"}},
		{"space prefix", Config{Prefix: "z r"}},
		{"replicas too many", Config{Replicas: 6}},
		{"replicas negative", Config{Replicas: -1}},
		{"timeout negative", Config{Timeout: -time.Second}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), nc, tc.cfg)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("New(%+v) error = %v, want ErrInvalid", tc.cfg, err)
			}
		})
	}
	if _, err := New(context.Background(), nil, Config{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("New(nil conn) error = %v, want ErrInvalid", err)
	}
}

func TestStreamDeclare(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	s := newTestStore(t, nc, Config{Prefix: "t1"})
	ctx := context.Background()

	cfg := StreamConfig{Name: "LEDGER", Subjects: []string{"ledger.>"}}
	st := newTestStream(t, s, cfg)
	if got, want := st.Name(), "T1_LEDGER"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	seq, err := st.Append(ctx, "ledger.a", []byte("x"))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}

	t.Run("idempotent", func(t *testing.T) {
		again := newTestStream(t, s, cfg)
		m, err := again.Get(ctx, seq)
		if err != nil || string(m.Data) != "x" {
			t.Errorf("Get(%d) after re-declare = %q, %v; want \"x\", nil", seq, m.Data, err)
		}
	})

	t.Run("max age applied", func(t *testing.T) {
		changed := cfg
		changed.MaxAge = time.Hour
		st2 := newTestStream(t, s, changed)
		info, err := st2.js.Info(ctx)
		if err != nil {
			t.Fatalf("Info: %v", err)
		}
		if got := info.Config.MaxAge; got != time.Hour {
			t.Errorf("MaxAge after update = %v, want %v", got, time.Hour)
		}
		if !st2.js.CachedInfo().Config.AllowDirect {
			t.Errorf("AllowDirect after update = false, want true")
		}
		if _, err := st2.GetLast(ctx, "ledger.a"); err != nil {
			t.Errorf("GetLast after update: %v", err)
		}
	})

	t.Run("incompatible storage", func(t *testing.T) {
		_, err := s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "T1_MEM", Subjects: []string{"t1.mem.>"}, Storage: jetstream.MemoryStorage,
		})
		if err != nil {
			t.Fatalf("CreateStream: %v", err)
		}
		_, err = s.Stream(ctx, StreamConfig{Name: "MEM", Subjects: []string{"mem.>"}})
		if err == nil {
			t.Fatalf("Stream over a memory stream succeeded, want an error")
		}
		for _, want := range []string{"T1_MEM", "storage", "Memory"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Stream error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("refused update", func(t *testing.T) {
		// Subjects overlapping another stream's are refused by the server.
		newTestStream(t, s, StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
		_, err := s.Stream(ctx, StreamConfig{Name: "LEDGER", Subjects: []string{"ledger.>", "other.x"}})
		if err == nil {
			t.Fatalf("Stream with overlapping subjects succeeded, want an error")
		}
		for _, want := range []string{"T1_LEDGER", "subjects", "refused"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Stream error %q does not mention %q", err, want)
			}
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	s := newTestStore(t, nc, Config{})
	st := newTestStream(t, s, StreamConfig{Name: "INV", Subjects: []string{"inv.>"}, AllowAtomic: true})
	b, err := s.Bucket(context.Background(), BucketConfig{Name: "inv"})
	if err != nil {
		t.Fatalf("Bucket: %v", err)
	}
	ctx := context.Background()

	for _, subj := range []string{"", "inv", "inv..a", ".inv.a", "inv.a.", "inv.*", "inv.>", "inv.a*", "inv.a b", "inv.a\tb", "inv.\x00", "elsewhere.a", "inv." + strings.Repeat("a", maxSubjectLen)} {
		t.Run("subject "+subj, func(t *testing.T) {
			if _, err := st.AppendIfLast(ctx, subj, nil, 0); !errors.Is(err, ErrInvalid) {
				t.Errorf("AppendIfLast(%q) error = %v, want ErrInvalid", subj, err)
			}
			if _, err := st.GetLast(ctx, subj); !errors.Is(err, ErrInvalid) {
				t.Errorf("GetLast(%q) error = %v, want ErrInvalid", subj, err)
			}
			if _, err := st.AppendAtomic(ctx, []AtomicMsg{{Subject: "inv.ok"}, {Subject: subj}}); !errors.Is(err, ErrInvalid) {
				t.Errorf("AppendAtomic(%q) error = %v, want ErrInvalid", subj, err)
			}
		})
	}
	for _, key := range []string{"", "a b", ".a", "a.", "a..b", "a*", "a>", "ключ", strings.Repeat("k", maxSubjectLen+1)} {
		t.Run("key "+key, func(t *testing.T) {
			if _, err := b.Put(ctx, key, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("Put(%q) error = %v, want ErrInvalid", key, err)
			}
			if _, err := b.Get(ctx, key); !errors.Is(err, ErrInvalid) {
				t.Errorf("Get(%q) error = %v, want ErrInvalid", key, err)
			}
		})
	}
	for _, filter := range []string{"", "a.>.b", "a.b*", "..", "a b"} {
		t.Run("filter "+filter, func(t *testing.T) {
			if _, err := st.Follow(ctx, filter, func(Msg) error { return nil }); !errors.Is(err, ErrInvalid) {
				t.Errorf("Follow(%q) error = %v, want ErrInvalid", filter, err)
			}
		})
	}
	others := []struct {
		name string
		err  func() error
	}{
		{"stream name with dot", func() error { _, err := s.Stream(ctx, StreamConfig{Name: "A.B", Subjects: []string{"ab"}}); return err }},
		{"stream without subjects", func() error { _, err := s.Stream(ctx, StreamConfig{Name: "EMPTY"}); return err }},
		{"duplicate window over max age", func() error {
			_, err := s.Stream(ctx, StreamConfig{Name: "DUP", Subjects: []string{"dup"}, MaxAge: time.Second, DuplicateWindow: time.Minute})
			return err
		}},
		{"bucket name with dot", func() error { _, err := s.Bucket(ctx, BucketConfig{Name: "a.b"}); return err }},
		{"bucket history", func() error { _, err := s.Bucket(ctx, BucketConfig{Name: "h", History: 65}); return err }},
		{"empty msg id", func() error { _, err := st.Append(ctx, "inv.a", nil, WithMsgID("")); return err }},
		{"server header", func() error { _, err := st.Append(ctx, "inv.a", nil, WithHeader("Nats-Msg-Id", "x")); return err }},
		{"empty atomic batch", func() error { _, err := st.AppendAtomic(ctx, nil); return err }},
		{"get sequence 0", func() error { _, err := st.Get(ctx, 0); return err }},
		{"update revision 0", func() error { _, err := b.Update(ctx, "k", nil, 0); return err }},
		{"watch pattern", func() error { _, err := b.Watch(ctx, "a.>.b"); return err }},
		{"oversized payload", func() error { _, err := st.Append(ctx, "inv.a", make([]byte, nc.MaxPayload()+1)); return err }},
	}
	for _, tc := range others {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: error = %v, want ErrInvalid", tc.name, err)
			}
		})
	}
	if n := subjectCount(t, st, "inv.a"); n != 0 {
		t.Errorf("messages on inv.a after refused appends = %d, want 0", n)
	}
}

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"zr.ledger.>", "zr.ledger.a", true},
		{"zr.ledger.>", "zr.ledger.a.b", true},
		{"zr.ledger.>", "zr.ledger", false},
		{"zr.*.a", "zr.x.a", true},
		{"zr.*.a", "zr.x.b", false},
		{"zr.*", "zr.x.y", false},
		{"zr.a", "zr.a", true},
		{"zr.a", "zr.ab", false},
	}
	for _, tc := range tests {
		if got := subjectMatches(tc.filter, tc.subject); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tc.filter, tc.subject, got, tc.want)
		}
	}
}

func FuzzValidateSubject(f *testing.F) {
	for _, seed := range []string{"ledger.asset.0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "audit.realm.n1", "scene.lobby.presence", "ledger.>", "a.*.c", "a..b", " ", "a.b\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		if validateSubject(subject) == nil {
			if strings.ContainsAny(subject, "*> \t\r\n") || strings.Contains(subject, "..") ||
				strings.HasPrefix(subject, ".") || strings.HasSuffix(subject, ".") || len(subject) > maxSubjectLen {
				t.Errorf("validateSubject(%q) = nil, want an error", subject)
			}
			if !subjectMatches(">", subject) || !subjectMatches(subject, subject) {
				t.Errorf("accepted subject %q does not match itself or '>'", subject)
			}
		}
		if validateFilter(subject) == nil && strings.ContainsAny(subject, " \t\r\n") {
			t.Errorf("validateFilter(%q) = nil, want an error", subject)
		}
	})
}

func FuzzValidateKey(f *testing.F) {
	for _, seed := range []string{"session.9f86d081884c7d65", "avatar/alice", "k=v", "a.b.c", ".a", "a b", "ключ"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if validateKey(key) != nil {
			return
		}
		for i := 0; i < len(key); i++ {
			c := key[i]
			if !isAlnum(c) && !strings.ContainsRune("-/_=.", rune(c)) {
				t.Fatalf("validateKey(%q) = nil, but byte %d is %q", key, i, c)
			}
		}
		if validateKeyPattern(key) != nil {
			t.Errorf("validateKeyPattern(%q) refused a valid key", key)
		}
	})
}
