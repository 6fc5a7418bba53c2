package peerbackground

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// FuzzParseRequest: any text is read or refused with ErrMalformed, never
// a panic, and what is read writes back as the same text.
func FuzzParseRequest(f *testing.F) {
	f.Add(newRequest("a.example", time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)).Text())
	f.Add("zerorealm/background-request/v1\nrealm a.example\ntime 2026-12-07T03:00:00+01:00\nnonce AAAAAAAAAAAAAAAAAAAAAA\n")
	f.Add("zerorealm/background-request/v1\nrealm a.example\ntime 2026-12-07T03:00:00.5Z\nnonce AAAAAAAAAAAAAAAAAAAAAA\n")
	f.Add("zerorealm/background-request/v1\nrealm a b\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRequest(text)
		if err != nil {
			if !strings.Contains(err.Error(), ErrMalformed.Error()) {
				t.Fatalf("refusal without ErrMalformed: %v", err)
			}
			return
		}
		if again := r.Text(); again != text {
			t.Fatalf("read %q, writes back %q", text, again)
		}
	})
}

// FuzzParseShare: the same for a share. A share's statistics are some
// 70 KB of base64, too large for the fuzzer to mutate at any pace, and
// their decoder is fuzzed on its own (biometrics'
// FuzzStatisticsUnmarshal); so the text fuzzed here stands for them with
// "@", which the target expands to a valid encoding before parsing, and
// the fuzzer works on the layout around them.
func FuzzParseShare(f *testing.F) {
	var stats biometrics.Background
	for p := range 5 {
		mu := make([]float64, biometrics.NumCoreFeatures)
		mu[p] = 1
		if err := stats.AddScatter(scatterFor(mu)); err != nil {
			f.Fatal(err)
		}
	}
	good, err := Share{Realm: "a.example", Reader: KeyName("b.example", "n1"), Time: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC), Nonce: make([]byte, nonceSize), Statistics: &stats}.Text()
	if err != nil {
		f.Fatal(err)
	}
	i := strings.Index(good, "statistics ") + len("statistics ")
	encodedStats := good[i : len(good)-1]
	short := good[:i] + "@\n"
	f.Add(short)
	f.Add(strings.Replace(short, "people 5", "people 6", 1))
	f.Add(strings.Replace(short, "@", "AAAA", 1))
	f.Add(strings.Replace(short, "@", "@@", 1))
	f.Add("zerorealm/background/v1\n")
	f.Fuzz(func(t *testing.T, text string) {
		text = strings.ReplaceAll(text, "@", encodedStats)
		s, err := ParseShare(text)
		if err != nil {
			if !strings.Contains(err.Error(), ErrMalformed.Error()) {
				t.Fatalf("refusal without ErrMalformed: %v", err)
			}
			return
		}
		again, err := s.Text()
		if err != nil || again != text {
			t.Fatalf("read a share that does not write back as itself: %v", err)
		}
	})
}

// FuzzOpenRequest: the bytes a node's route reads from anyone are opened
// or refused with a reason, never a panic.
func FuzzOpenRequest(f *testing.F) {
	t := &testing.T{}
	reader := vkeyOf(t, "b.example", "n1")
	engine, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		f.Fatal(err)
	}
	svc, err := New(context.Background(), Config{Readers: []string{reader}}, Deps{Log: discard(), Realm: "a.example", Node: "n1", Seed: seedOf("a.example", "n1"), Engine: engine, Store: newStore(f), Audit: &decisions{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signedRequest(t, newRequest("a.example", time.Now()), "b.example", "n1"))
	f.Add(signedRequest(t, newRequest("a.example", time.Now()), "c.example", "n1"))
	f.Add([]byte("zerorealm/background-request/v1\n\n— b.example/zerorealm/background/n1 AAAA\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		reader, _, err := svc.openRequest(msg)
		if err == nil && reader == "" {
			t.Fatal("a request opened without a reader")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("a refusal without a reason")
		}
	})
}
