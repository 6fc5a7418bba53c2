package scenes

import (
	"errors"
	"testing"
)

func TestZoneContains(t *testing.T) {
	z := Zone{ID: "bay", Min: [3]float64{0, 0, 0}, Max: [3]float64{4, 3, 4}}
	tests := []struct {
		p    [3]float64
		want bool
	}{
		{[3]float64{2, 1, 2}, true},
		{[3]float64{0, 0, 0}, true},  // min corner is inside
		{[3]float64{4, 1, 2}, false}, // max face belongs to the neighbour
		{[3]float64{3.999, 2.999, 3.999}, true},
		{[3]float64{-0.001, 1, 2}, false},
		{[3]float64{2, 3, 2}, false},
		{[3]float64{2, 1, 4}, false},
	}
	for _, tt := range tests {
		if got := z.Contains(tt.p); got != tt.want {
			t.Errorf("Zone%v-%v.Contains(%v) = %v, want %v", z.Min, z.Max, tt.p, got, tt.want)
		}
	}
}

func TestZoneAt(t *testing.T) {
	s := &Scene{Zones: []Zone{
		{ID: "hall", Min: [3]float64{0, 0, 0}, Max: [3]float64{20, 5, 10}},
		{ID: "cell", Min: [3]float64{2, 0, 2}, Max: [3]float64{6, 3, 6}},
		{ID: "twin-a", Min: [3]float64{10, 0, 0}, Max: [3]float64{12, 2, 2}},
		{ID: "twin-b", Min: [3]float64{10, 0, 0}, Max: [3]float64{12, 2, 2}},
		{ID: "annex", Min: [3]float64{20, 0, 0}, Max: [3]float64{30, 5, 10}},
	}}
	tests := []struct {
		p    [3]float64
		want string // "" for none
	}{
		{[3]float64{1, 1, 1}, "hall"},
		{[3]float64{3, 1, 3}, "cell"},    // nested: the smaller zone wins
		{[3]float64{11, 1, 1}, "twin-a"}, // equal volumes: declared first wins
		{[3]float64{20, 1, 1}, "annex"},  // shared face: the zone that starts there
		{[3]float64{30, 1, 1}, ""},
		{[3]float64{1, -1, 1}, ""},
	}
	for _, tt := range tests {
		z, ok := s.ZoneAt(tt.p)
		got := ""
		if ok {
			got = z.ID
		}
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("ZoneAt(%v) = %q, %v; want %q", tt.p, got, ok, tt.want)
		}
	}
}

func TestLookups(t *testing.T) {
	s, err := Parse("t.yaml", []byte(validScene))
	if err != nil {
		t.Fatal(err)
	}
	if z, ok := s.Zone("hall"); !ok || z.ID != "hall" {
		t.Errorf(`Zone("hall") = %v, %v; want hall`, z, ok)
	}
	if z, ok := s.Zone("yard"); ok || z != nil {
		t.Errorf(`Zone("yard") = %v, %v; want nil, false`, z, ok)
	}
	tw, ok := s.Twin("press")
	if !ok || tw.ID != "press" {
		t.Fatalf(`Twin("press") = %v, %v; want press`, tw, ok)
	}
	if _, ok := s.Twin("ram"); ok {
		t.Errorf(`Twin("ram") found; want not found`)
	}
	if a, ok := tw.Actuator("ram"); !ok || a.Risk != RiskHigh {
		t.Errorf(`Actuator("ram") = %v, %v; want the high-risk ram`, a, ok)
	}
	if _, ok := tw.Actuator("press"); ok {
		t.Errorf(`Actuator("press") found; want not found`)
	}
	if c, ok := s.Collection("credits"); !ok || c.Kind != KindFungible {
		t.Errorf(`Collection("credits") = %v, %v; want fungible credits`, c, ok)
	}
	if _, ok := s.Collection("first"); ok {
		t.Errorf(`Collection("first") found; want not found`)
	}
}

func TestParseRisk(t *testing.T) {
	for _, s := range []string{"low", "medium", "high", "critical"} {
		if r, err := ParseRisk(s); err != nil || string(r) != s {
			t.Errorf("ParseRisk(%q) = %q, %v; want %q, nil", s, r, err, s)
		}
	}
	for _, s := range []string{"", "High", "severe", " low"} {
		if r, err := ParseRisk(s); !errors.Is(err, ErrUnknownRisk) || r != "" {
			t.Errorf("ParseRisk(%q) = %q, %v; want ErrUnknownRisk", s, r, err)
		}
	}
}

func TestRiskAtLeast(t *testing.T) {
	tests := []struct {
		r, floor Risk
		want     bool
	}{
		{RiskLow, RiskLow, true},
		{RiskMedium, RiskHigh, false},
		{RiskHigh, RiskHigh, true},
		{RiskCritical, RiskHigh, true},
		{RiskHigh, RiskCritical, false},
		{Risk("extreme"), RiskLow, false},
		{Risk(""), Risk(""), false},
	}
	for _, tt := range tests {
		if got := tt.r.AtLeast(tt.floor); got != tt.want {
			t.Errorf("Risk(%q).AtLeast(%q) = %v, want %v", tt.r, tt.floor, got, tt.want)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, s := range []string{"unique", "fungible"} {
		if k, err := ParseKind(s); err != nil || string(k) != s {
			t.Errorf("ParseKind(%q) = %q, %v; want %q, nil", s, k, err, s)
		}
	}
	for _, s := range []string{"", "nft", "Unique"} {
		if k, err := ParseKind(s); !errors.Is(err, ErrUnknownKind) || k != "" {
			t.Errorf("ParseKind(%q) = %q, %v; want ErrUnknownKind", s, k, err)
		}
	}
}

// TestChecksumAddress uses the test vectors of EIP-55.
func TestChecksumAddress(t *testing.T) {
	vectors := []string{
		// all caps
		"0x52908400098527886E0F7030069857D2E4169EE7",
		"0x8617E340B3D01FA5F11F306F4090FD50E238070D",
		// all lower
		"0xde709f2102306220921060314715629080e2fb77",
		"0x27b1fdb04752bbc536007a920d24acb045561c26",
		// normal
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	}
	for _, want := range vectors {
		if !isHexAddress(want) {
			t.Errorf("isHexAddress(%q) = false, want true", want)
		}
		if got := checksumAddress(want); got != want {
			t.Errorf("checksumAddress(%q) = %q, want %q", want, got, want)
		}
	}
	for _, bad := range []string{"", "0x", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"} {
		if isHexAddress(bad) {
			t.Errorf("isHexAddress(%q) = true, want false", bad)
		}
	}
}
