package peerbackground

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/notekey"
)

// TestConfigProblemsNameWhatIsWrong: every mistake an operator can make
// in the exchange's settings is named before the node starts.
func TestConfigProblemsNameWhatIsWrong(t *testing.T) {
	a1, a2, b1 := vkeyOf(t, "a.example", "n1"), vkeyOf(t, "a.example", "n2"), vkeyOf(t, "b.example", "n1")
	_, checkpointKey, err := notekey.Keys("b.example/zerorealm/audit/n1", seedOf("b.example", "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if p := Problems(Config{Peers: []Peer{{URL: "https://a.example", Keys: []string{a1, a2}}}, Readers: []string{b1}}); len(p) != 0 {
		t.Fatalf("a good configuration: %v", p)
	}
	for _, loopback := range []string{"http://localhost:8080", "http://a.localhost", "http://127.0.0.1:18601", "http://[::1]:8080"} {
		if p := Problems(Config{Peers: []Peer{{URL: loopback, Keys: []string{a1}}}}); len(p) != 0 {
			t.Errorf("http:// to a loopback host, %s: %v", loopback, p)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		says string
	}{
		{"k below 5", Config{MinPeople: 3}, "at least 5"},
		{"fetched every 10s", Config{Every: 10 * time.Second}, "at least 1m0s"},
		{"kept shorter than fetched", Config{Every: time.Hour, MaxAge: time.Minute}, "at least the fetch interval"},
		{"a reader that is no key", Config{Readers: []string{"b.example"}}, "not a note verifier key"},
		{"a reader's checkpoint key", Config{Readers: []string{checkpointKey}}, "not a background key"},
		{"a peer URL with a path", Config{Peers: []Peer{{URL: "https://a.example/v1", Keys: []string{a1}}}}, "want scheme://host[:port]"},
		{"a peer over plain http", Config{Peers: []Peer{{URL: "http://a.example", Keys: []string{a1}}}}, "want https://"},
		{"a peer without keys", Config{Peers: []Peer{{URL: "https://a.example"}}}, "no keys"},
		{"a peer whose keys name two realms", Config{Peers: []Peer{{URL: "https://a.example", Keys: []string{a1, b1}}}}, "one peer is one realm"},
		{"one realm named by two peers", Config{Peers: []Peer{{URL: "https://a.example", Keys: []string{a1}}, {URL: "https://a2.example", Keys: []string{a2}}}}, "named by another peer too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Problems(tc.cfg)
			if len(p) == 0 || !strings.Contains(strings.Join(p, "; "), tc.says) {
				t.Errorf("Problems = %v; want one saying %q", p, tc.says)
			}
		})
	}
}

// TestAPeerNamingThisRealmIsRefused: a realm that fetched its own
// statistics would count its people twice.
func TestAPeerNamingThisRealmIsRefused(t *testing.T) {
	engine := newSide(t, "z.example", "n1", Config{}, nil, nil, false).engine
	_, err := New(context.Background(), Config{Peers: []Peer{{URL: "https://a.example", Keys: []string{vkeyOf(t, "a.example", "n2")}}}},
		Deps{Log: discard(), Realm: "a.example", Node: "n1", Seed: seedOf("a.example", "n1"), Engine: engine, Store: newStore(t), Audit: &decisions{}})
	if err == nil || !strings.Contains(err.Error(), "would count twice") {
		t.Errorf("New = %v; want a refusal of this realm as its own peer", err)
	}
}
