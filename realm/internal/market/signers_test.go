package market

import (
	"strings"
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
