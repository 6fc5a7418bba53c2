package market

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
)

// TestMergeSigners: what a start publishes, given what the node published
// before and its key ring.
func TestMergeSigners(t *testing.T) {
	k1, k2, k3 := common.HexToAddress("0x1111111111111111111111111111111111111111"), common.HexToAddress("0x2222222222222222222222222222222222222222"), common.HexToAddress("0x3333333333333333333333333333333333333333")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	ring := []assets.KeyInfo{{Address: k1, Created: t0}}

	first := mergeSigners(nodeSigners{}, "n", ring, k1, t0.Add(time.Minute))
	if len(first.Signers) != 1 || first.Signers[0].Since != t0 || !first.Signers[0].Current || first.Signers[0].Until != nil || first.Node != "n" {
		t.Fatalf("first start: %+v", first)
	}
	// Rotated twice between starts: k2 never was current while published.
	ring = append(ring, assets.KeyInfo{Address: k2, Created: t0.Add(day)}, assets.KeyInfo{Address: k3, Created: t0.Add(2 * day)})
	now := t0.Add(3 * day)
	second := mergeSigners(first, "n", ring, k3, now)
	if len(second.Signers) != 3 {
		t.Fatalf("after two rotations: %+v", second)
	}
	for i, want := range []struct {
		addr    common.Address
		since   time.Time
		current bool
	}{{k1, t0, false}, {k2, t0.Add(day), false}, {k3, t0.Add(2 * day), true}} {
		s := second.Signers[i]
		if s.Address != want.addr.Hex() || !s.Since.Equal(want.since) || s.Current != want.current || (s.Until == nil) != want.current {
			t.Errorf("signer %d: %+v, want %s since %s current %v", i, s, want.addr.Hex(), want.since, want.current)
		}
		if !want.current && !s.Until.Equal(now) {
			t.Errorf("signer %d retired until %s, want this start %s (it may have signed until then)", i, s.Until, now)
		}
	}
	// The next start keeps every period; a removed key file drops nothing.
	third := mergeSigners(second, "n", ring[2:], k3, now.Add(day))
	if len(third.Signers) != 3 || !third.Signers[0].Until.Equal(now) || !third.Signers[1].Until.Equal(now) || !third.Signers[2].Current {
		t.Fatalf("a later start changed the periods: %+v", third)
	}
	// Addresses are compared whatever their case.
	lower := second
	lower.Signers = append([]signerPeriod(nil), second.Signers...)
	lower.Signers[2].Address = strings.ToLower(lower.Signers[2].Address)
	if again := mergeSigners(lower, "n", ring, k3, now.Add(day)); len(again.Signers) != 3 {
		t.Fatalf("a lower-case address was added again: %+v", again)
	}
}

// capturedLog is a slog handler that keeps every record's level and
// message, for tests that count what was logged.
type capturedLog struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *capturedLog) Enabled(context.Context, slog.Level) bool { return true }
func (c *capturedLog) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r)
	return nil
}
func (c *capturedLog) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capturedLog) WithGroup(string) slog.Handler      { return c }

// count is how many records at level carry msg.
func (c *capturedLog) count(level slog.Level, msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.records {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// TestSignersWarnOncePerBadEntry: a bad entry in the signers bucket is
// warned of the first time Signers meets it and logged at debug on every
// later refresh; a new bad entry, or the same node's entry rewritten, is
// warned of again.
func TestSignersWarnOncePerBadEntry(t *testing.T) {
	ctx := context.Background()
	m := openTestMarket(t, nil, "")
	logs := &capturedLog{}
	m.s.log = slog.New(logs)
	const notNodes = "ignoring a receipt signers entry that is not a node's"
	const notAddress = "ignoring a receipt signer that is not an address"

	if _, err := m.s.signers.Create(ctx, "forged", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	badAddress, err := json.Marshal(nodeSigners{Node: "n2", Signers: []signerPeriod{{Address: "0xnot-an-address", Since: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.s.signers.Create(ctx, "n2", badAddress); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		listed, err := m.s.Signers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0].Node != "n1" {
			t.Fatalf("listed %+v, want only n1's signer", listed)
		}
	}
	if w, d := logs.count(slog.LevelWarn, notNodes), logs.count(slog.LevelDebug, notNodes); w != 1 || d != 2 {
		t.Fatalf("the bad entry over three refreshes: %d warnings, %d debug records; want 1 and 2", w, d)
	}
	if w, d := logs.count(slog.LevelWarn, notAddress), logs.count(slog.LevelDebug, notAddress); w != 1 || d != 2 {
		t.Fatalf("the bad address over three refreshes: %d warnings, %d debug records; want 1 and 2", w, d)
	}

	entry, err := m.s.signers.Get(ctx, "forged")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.s.signers.Update(ctx, "forged", []byte("still not json"), entry.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := m.s.Signers(ctx); err != nil {
		t.Fatal(err)
	}
	if w := logs.count(slog.LevelWarn, notNodes); w != 2 {
		t.Fatalf("after the bad entry was rewritten: %d warnings, want 2 (the new revision warned of once)", w)
	}
}
