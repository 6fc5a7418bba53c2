package risk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var known = []Level{Low, Medium, High, Critical}

func TestParse(t *testing.T) {
	for _, l := range known {
		if got, err := Parse(string(l)); err != nil || got != l {
			t.Errorf("Parse(%q) = %q, %v; want %q, nil", l, got, err, l)
		}
	}
	for _, s := range []string{"", "High", "LOW", "severe", " low", "low ", "medium\x00", "critical!", "lów", strings.Repeat("x", 1<<16)} {
		got, err := Parse(s)
		if !errors.Is(err, ErrUnknown) || got != "" {
			t.Errorf("Parse(%.20q) = %q, %v; want \"\", ErrUnknown", s, got, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "want low, medium, high or critical") || len(msg) > 200 {
			t.Errorf("Parse(%.20q) error %.300q: want the four names, in under 200 bytes", s, msg)
		}
	}
}

func TestRankOrdersTheLevels(t *testing.T) {
	for i, l := range known {
		if got := l.Rank(); got != i+1 {
			t.Errorf("%q.Rank() = %d, want %d", l, got, i+1)
		}
		if !l.Known() {
			t.Errorf("%q.Known() = false", l)
		}
	}
	for _, l := range []Level{"", "extreme", "Critical"} {
		if l.Rank() != 0 || l.Known() {
			t.Errorf("%q: Rank %d, Known %v; want 0, false", l, l.Rank(), l.Known())
		}
	}
}

func TestComparisons(t *testing.T) {
	tests := []struct {
		l, other        Level
		atLeast, atMost bool
	}{
		{Low, Low, true, true},
		{Low, Medium, false, true},
		{Medium, High, false, true},
		{High, High, true, true},
		{Critical, High, true, false},
		{High, Critical, false, true},
		{Critical, Low, true, false},
		// An unknown level reaches no floor and stays under no ceiling.
		{"extreme", Low, false, false},
		{"extreme", Critical, false, false},
		{"", "", false, false},
		// An unknown other ranks 0: every known level is at least it, none at most.
		{Low, "extreme", true, false},
		{Critical, "", true, false},
	}
	for _, tt := range tests {
		if got := tt.l.AtLeast(tt.other); got != tt.atLeast {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tt.l, tt.other, got, tt.atLeast)
		}
		if got := tt.l.AtMost(tt.other); got != tt.atMost {
			t.Errorf("%q.AtMost(%q) = %v, want %v", tt.l, tt.other, got, tt.atMost)
		}
	}
}

// TestWireIsTheName: a level crosses JSON as its bare name, both ways, and
// decoding does not judge it (the domains validate, each with its own
// reason), so adopting the shared type changes no wire.
func TestWireIsTheName(t *testing.T) {
	type actuator struct {
		Risk Level `json:"risk"`
	}
	b, err := json.Marshal(actuator{Risk: Critical})
	if err != nil || string(b) != `{"risk":"critical"}` {
		t.Fatalf("Marshal = %s, %v; want {\"risk\":\"critical\"}", b, err)
	}
	var a actuator
	if err := json.Unmarshal([]byte(`{"risk":"severe"}`), &a); err != nil || a.Risk != "severe" || a.Risk.Known() {
		t.Fatalf("Unmarshal of an unknown level = %+v, %v; want it kept as read and unknown", a, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"low", "medium", "high", "critical", "", "High", "low\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrUnknown) || l != "" {
				t.Fatalf("Parse(%q) = %q, %v; want \"\" and ErrUnknown", s, l, err)
			}
			if Level(s).Known() {
				t.Fatalf("Parse refused %q, a known level", s)
			}
			return
		}
		if string(l) != s || !l.Known() || !l.AtLeast(Low) || !l.AtMost(Critical) {
			t.Fatalf("Parse(%q) = %q: want the same known level, between low and critical", s, l)
		}
	})
}
