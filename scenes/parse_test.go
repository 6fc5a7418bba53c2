package scenes

import (
	"errors"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
)

// validScene is the base of the validation table: every case changes a few
// of its lines and expects exactly the listed problems.
const validScene = `id: test
name: Test scene
zones:
  - id: bay
    name: Bay
    min: [0, 0, 0]
    max: [4, 3, 4]
  - id: hall
    name: Hall
    min: [4, 0, 0]
    max: [10, 3, 4]
twins:
  - id: press
    name: Press
    zone: bay
    actuators:
      - id: ram
        name: Ram
        unit: mm
        min: 0
        max: 400
        max_rate: 50
        risk: high
collections:
  - id: badges
    name: Badges
    kind: unique
    soulbound: true
    items:
      - id: first
        owner: realm
  - id: credits
    name: Credits
    kind: fungible
    decimals: 2
    mints:
      - to: realm
        amount: "1000"
policies:
  - policies.cedar
`

// editLines replaces whole lines (1-based) of validScene; a replacement may
// hold several lines or none.
func editLines(t *testing.T, edits map[int]string) string {
	t.Helper()
	lines := strings.Split(validScene, "\n")
	for n, text := range edits {
		if n < 1 || n > len(lines) {
			t.Fatalf("edit of line %d outside the %d-line base scene", n, len(lines))
		}
		lines[n-1] = text
	}
	var kept []string
	for _, l := range lines {
		if l != "\x00" { // marks a deleted line
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

const deleted = "\x00"

func problemStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LoadError", err, err)
	}
	out := make([]string, len(le.Problems))
	for i, p := range le.Problems {
		out[i] = p.String()
	}
	return out
}

func TestParseValidScene(t *testing.T) {
	s, err := Parse("t.yaml", []byte(validScene))
	if err != nil {
		t.Fatalf("Parse(validScene) error:\n%v", err)
	}
	if s.ID != "test" || s.Name != "Test scene" || len(s.Zones) != 2 || len(s.Twins) != 1 || len(s.Collections) != 2 {
		t.Fatalf("Parse(validScene) = %+v, want 2 zones, 1 twin, 2 collections", s)
	}
	if got, want := s.Zones[1], (Zone{ID: "hall", Name: "Hall", Min: [3]float64{4, 0, 0}, Max: [3]float64{10, 3, 4}}); got != want {
		t.Errorf("zone 1 = %+v, want %+v", got, want)
	}
	ram := Actuator{ID: "ram", Name: "Ram", Unit: "mm", Min: 0, Max: 400, MaxRate: 50, Risk: RiskHigh}
	if got := s.Twins[0]; got.ID != "press" || got.Zone != "bay" || len(got.Actuators) != 1 || got.Actuators[0] != ram {
		t.Errorf("twin 0 = %+v, want press in bay with %+v", got, ram)
	}
	badges, credits := s.Collections[0], s.Collections[1]
	if badges.Kind != KindUnique || !badges.Soulbound || !slices.Equal(badges.Items, []Item{{ID: "first", Owner: RealmOwner}}) {
		t.Errorf("badges = %+v", badges)
	}
	if credits.Kind != KindFungible || credits.Soulbound || credits.Decimals != 2 || len(credits.Mints) != 1 ||
		credits.Mints[0].To != RealmOwner || credits.Mints[0].Amount.Cmp(big.NewInt(1000)) != 0 {
		t.Errorf("credits = %+v", credits)
	}
	if !slices.Equal(s.PolicyFiles, []string{"policies.cedar"}) || s.Policies != nil {
		t.Errorf("PolicyFiles, Policies = %q, %v; want [policies.cedar], nil", s.PolicyFiles, s.Policies)
	}
}

func TestParseValidation(t *testing.T) {
	const two255 = "57896044618658097711785492504343953926634992332820282019728792003956564819968"
	const two256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936"
	tests := []struct {
		name  string
		edits map[int]string
		want  []string // nil: the edited scene is valid
	}{
		// scene
		{"id with bad characters", map[int]string{1: "id: Test_Scene"},
			[]string{`t.yaml:1:5: id: invalid id "Test_Scene": want 1 to 64 of a-z, 0-9 and -`}},
		{"id too long", map[int]string{1: "id: " + strings.Repeat("a", 65)},
			[]string{`t.yaml:1:5: id: invalid id "` + strings.Repeat("a", 65) + `": want 1 to 64 of a-z, 0-9 and -`}},
		{"id of 64 characters", map[int]string{1: "id: " + strings.Repeat("a", 64)}, nil},
		{"id missing", map[int]string{1: "description: no id"},
			[]string{`t.yaml:1:1: missing required field "id"`}},
		{"id as a list", map[int]string{1: "id: [a]"},
			[]string{`t.yaml:1:5: id: must be a string`}},
		{"name empty", map[int]string{2: `name: ""`},
			[]string{`t.yaml:2:7: name: must not be empty`}},
		{"name null", map[int]string{2: `name: ~`},
			[]string{`t.yaml:2:7: name: must not be empty`}},
		{"name as a number", map[int]string{2: `name: 2024`}, nil},
		{"unknown field", map[int]string{2: "name: Test scene\ncolour: red"},
			[]string{`t.yaml:3:1: unknown field "colour" (known: id, name, description, zones, twins, collections, policies)`}},
		{"misspelt field", map[int]string{2: "nmae: Test scene"},
			[]string{`t.yaml:1:1: missing required field "name"`, `t.yaml:2:1: unknown field "nmae" (did you mean "name"?)`}},
		{"duplicate field", map[int]string{2: "name: Test scene\nname: Again"},
			[]string{`t.yaml:3:1: name: duplicate field (first at line 2)`}},
		{"description as a mapping", map[int]string{2: "name: Test scene\ndescription: {a: b}"},
			[]string{`t.yaml:3:14: description: must be a string`}},
		{"zones as a mapping", map[int]string{3: "zones: {}", 4: deleted, 5: deleted, 6: deleted, 7: deleted, 8: deleted, 9: deleted, 10: deleted, 11: deleted},
			[]string{`t.yaml:3:8: zones: must be a list`, `t.yaml:7:11: twins[0].zone: unknown zone "bay": a twin must stand in a zone of this scene`}},

		// zones
		{"zone misspelt field", map[int]string{6: "    mn: [0, 0, 0]"},
			[]string{`t.yaml:4:5: zones[0]: missing required field "min"`, `t.yaml:6:5: zones[0]: unknown field "mn" (did you mean "min"?)`}},
		{"zone not a mapping", map[int]string{8: "  - hall", 9: deleted, 10: deleted, 11: deleted},
			[]string{`t.yaml:8:5: zones[1]: must be a mapping of fields (id, name, min, max)`}},
		{"zone duplicate id", map[int]string{8: "  - id: bay"},
			[]string{`t.yaml:8:9: zones[1].id: duplicate zone id "bay" (first at line 4)`}},
		{"zone min of two numbers", map[int]string{6: "    min: [0, 0]"},
			[]string{`t.yaml:6:10: zones[0].min: must be a list of 3 numbers [x, y, z]`}},
		{"zone min not a number", map[int]string{6: "    min: [0, a, 0]"},
			[]string{`t.yaml:6:14: zones[0].min[1]: must be a number`}},
		{"zone max infinite", map[int]string{7: "    max: [4, .inf, 4]"},
			[]string{`t.yaml:7:14: zones[0].max[1]: must be a finite number, not .inf`}},
		{"zone without volume", map[int]string{7: "    max: [4, 0, 4]"},
			[]string{`t.yaml:7:10: zones[0].max: max y (0) must be greater than min y (0): a zone needs volume`}},
		{"zone inside out", map[int]string{11: "    max: [2, 3, 4]"},
			[]string{`t.yaml:11:10: zones[1].max: max x (2) must be greater than min x (4): a zone needs volume`}},
		{"zone name missing", map[int]string{9: deleted},
			[]string{`t.yaml:8:5: zones[1]: missing required field "name"`}},

		// twins
		{"twin in a misspelt zone", map[int]string{15: "    zone: bayy"},
			[]string{`t.yaml:15:11: twins[0].zone: unknown zone "bayy" (did you mean "bay"?)`}},
		{"twin in an unknown zone", map[int]string{15: "    zone: yard"},
			[]string{`t.yaml:15:11: twins[0].zone: unknown zone "yard": a twin must stand in a zone of this scene`}},
		{"twin in a zone with other problems", map[int]string{7: "    max: [0, 0, 0]"},
			[]string{`t.yaml:7:10: zones[0].max: max x (0) must be greater than min x (0): a zone needs volume`}},
		{"twin name missing", map[int]string{14: deleted},
			[]string{`t.yaml:13:5: twins[0]: missing required field "name"`}},
		{"twin duplicate id", map[int]string{23: "        risk: high\n  - id: press\n    name: Press two\n    zone: hall"},
			[]string{`t.yaml:24:9: twins[1].id: duplicate twin id "press" (first at line 13)`}},
		{"twin without actuators", map[int]string{16: deleted, 17: deleted, 18: deleted, 19: deleted, 20: deleted, 21: deleted, 22: deleted, 23: deleted}, nil},

		// actuators
		{"actuator duplicate id", map[int]string{23: "        risk: high\n      - id: ram\n        name: Ram two\n        unit: mm\n        min: 0\n        max: 1\n        max_rate: 1\n        risk: low"},
			[]string{`t.yaml:24:13: twins[0].actuators[1].id: duplicate actuator id "ram" (first at line 17)`}},
		{"actuator max equal to min", map[int]string{21: "        max: 0"},
			[]string{`t.yaml:21:14: twins[0].actuators[0].max: max (0) must be greater than min (0)`}},
		{"actuator max not a number", map[int]string{21: "        max: .nan"},
			[]string{`t.yaml:21:14: twins[0].actuators[0].max: must be a finite number, not .nan`}},
		{"actuator min a word", map[int]string{20: "        min: low"},
			[]string{`t.yaml:20:14: twins[0].actuators[0].min: must be a number`}},
		{"actuator negative min", map[int]string{20: "        min: -400"}, nil},
		{"actuator max_rate zero", map[int]string{22: "        max_rate: 0"},
			[]string{`t.yaml:22:19: twins[0].actuators[0].max_rate: must be greater than 0, not 0`}},
		{"actuator max_rate negative", map[int]string{22: "        max_rate: -1.5"},
			[]string{`t.yaml:22:19: twins[0].actuators[0].max_rate: must be greater than 0, not -1.5`}},
		{"actuator risk misspelt", map[int]string{23: "        risk: hgih"},
			[]string{`t.yaml:23:15: twins[0].actuators[0].risk: unknown risk "hgih" (want low, medium, high or critical)`}},
		{"actuator unit missing", map[int]string{19: deleted},
			[]string{`t.yaml:17:9: twins[0].actuators[0]: missing required field "unit"`}},
		{"actuator unknown field", map[int]string{23: "        risk: high\n        maxrate: 5"},
			[]string{`t.yaml:24:9: twins[0].actuators[0]: unknown field "maxrate" (did you mean "max_rate"?)`}},

		// collections
		{"collection kind unknown", map[int]string{27: "    kind: nft", 29: deleted, 30: deleted, 31: deleted},
			[]string{`t.yaml:27:11: collections[0].kind: unknown kind "nft" (want unique or fungible)`}},
		{"collection duplicate id", map[int]string{32: "  - id: badges"},
			[]string{`t.yaml:32:9: collections[1].id: duplicate collection id "badges" (first at line 25)`}},
		{"collection soulbound not a bool", map[int]string{28: "    soulbound: yes"},
			[]string{`t.yaml:28:16: collections[0].soulbound: must be true or false`}},
		{"unique collection with decimals", map[int]string{28: "    soulbound: true\n    decimals: 0"},
			[]string{`t.yaml:29:5: collections[0].decimals: only fungible collections have decimals`}},
		{"unique collection with mints", map[int]string{28: "    soulbound: true\n    mints: []"},
			[]string{`t.yaml:29:5: collections[0].mints: unique collections have items, not mints`}},
		{"fungible collection with items", map[int]string{35: "    decimals: 2\n    items: []"},
			[]string{`t.yaml:36:5: collections[1].items: fungible collections have mints, not items`}},
		{"decimals above 18", map[int]string{35: "    decimals: 19"},
			[]string{`t.yaml:35:15: collections[1].decimals: must be from 0 to 18, not 19`}},
		{"decimals negative", map[int]string{35: "    decimals: -1"},
			[]string{`t.yaml:35:15: collections[1].decimals: must be from 0 to 18, not -1`}},
		{"decimals fractional", map[int]string{35: "    decimals: 2.5"},
			[]string{`t.yaml:35:15: collections[1].decimals: must be a whole number from 0 to 18`}},
		{"decimals 18", map[int]string{35: "    decimals: 18"}, nil},
		{"soulbound fungible", map[int]string{35: "    decimals: 2\n    soulbound: true"}, nil},

		// items
		{"item duplicate id", map[int]string{31: "        owner: realm\n      - id: first\n        owner: realm"},
			[]string{`t.yaml:32:13: collections[0].items[1].id: duplicate item id "first" (first at line 30)`}},
		{"item owner missing", map[int]string{31: deleted},
			[]string{`t.yaml:30:9: collections[0].items[0]: missing required field "owner"`}},
		{"item owner checksummed address", map[int]string{31: "        owner: 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, nil},
		{"item owner lowercase address", map[int]string{31: "        owner: 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"},
			[]string{`t.yaml:31:16: collections[0].items[0].owner: address 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed is not in EIP-55 checksum form (want 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed)`}},
		{"item owner with a wrong checksum", map[int]string{31: "        owner: 0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
			[]string{`t.yaml:31:16: collections[0].items[0].owner: address 0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed is not in EIP-55 checksum form (want 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed)`}},
		{"item owner a name", map[int]string{31: "        owner: alice"},
			[]string{`t.yaml:31:16: collections[0].items[0].owner: "alice" is neither "realm" nor a 0x address of 40 hex digits`}},
		{"item owner short address", map[int]string{31: "        owner: 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe"},
			[]string{`t.yaml:31:16: collections[0].items[0].owner: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe" is neither "realm" nor a 0x address of 40 hex digits`}},
		{"item owner zero address", map[int]string{31: "        owner: " + zeroAddress},
			[]string{`t.yaml:31:16: collections[0].items[0].owner: the zero address cannot own assets`}},

		// mints
		{"mint amount unquoted", map[int]string{38: "        amount: 1000"}, nil},
		{"mint amount zero", map[int]string{38: `        amount: "0"`},
			[]string{`t.yaml:38:17: collections[1].mints[0].amount: must be greater than 0`}},
		{"mint amount negative", map[int]string{38: `        amount: "-5"`},
			[]string{`t.yaml:38:17: collections[1].mints[0].amount: must be a decimal string of base units, like "1000"; got "-5"`}},
		{"mint amount fractional", map[int]string{38: `        amount: "1.5"`},
			[]string{`t.yaml:38:17: collections[1].mints[0].amount: must be a decimal string of base units, like "1000"; got "1.5"`}},
		{"mint amount with leading zeros", map[int]string{38: `        amount: "0010"`},
			[]string{`t.yaml:38:17: collections[1].mints[0].amount: "0010" must not have leading zeros`}},
		{"mint amount 2^256", map[int]string{38: `        amount: "` + two256 + `"`},
			[]string{`t.yaml:38:17: collections[1].mints[0].amount: must be below 2^256`}},
		{"mint amount 2^256-1", map[int]string{38: `        amount: "` + new(big.Int).Sub(maxAmount, big.NewInt(0)).String() + `"`}, nil},
		{"mints above 2^256 in total", map[int]string{38: `        amount: "` + two255 + `"` + "\n      - to: realm\n        amount: \"" + two255 + `"`},
			[]string{`t.yaml:37:7: collections[1].mints: total supply exceeds 2^256-1 base units`}},
		{"mint to missing", map[int]string{37: "      - amount: \"1000\"", 38: deleted},
			[]string{`t.yaml:37:9: collections[1].mints[0]: missing required field "to"`}},

		// policies
		{"policies missing", map[int]string{39: deleted, 40: deleted},
			[]string{`t.yaml:1:1: missing required field "policies"`}},
		{"policies empty", map[int]string{39: "policies: []", 40: deleted},
			[]string{`t.yaml:39:11: policies: at least one Cedar file is required: without policies every request is denied`}},
		{"policy outside the scene folder", map[int]string{40: "  - ../shared.cedar"},
			[]string{`t.yaml:40:5: policies[0]: "../shared.cedar" must be a relative path inside the scene folder, like policies.cedar`}},
		{"policy with an absolute path", map[int]string{40: "  - /etc/policies.cedar"},
			[]string{`t.yaml:40:5: policies[0]: "/etc/policies.cedar" must be a relative path inside the scene folder, like policies.cedar`}},
		{"policy not a Cedar file", map[int]string{40: "  - policies.txt"},
			[]string{`t.yaml:40:5: policies[0]: "policies.txt" must be a Cedar file ending in .cedar`}},
		{"policy listed twice", map[int]string{40: "  - policies.cedar\n  - policies.cedar"},
			[]string{`t.yaml:41:5: policies[1]: duplicate policy file "policies.cedar" (first at line 40)`}},
		{"policy in a subfolder", map[int]string{40: "  - cedar/zones.cedar"}, nil},

		// YAML itself
		{"unclosed flow sequence", map[int]string{6: "    min: [0, 0, 0"},
			[]string{`t.yaml:6: invalid YAML: did not find expected ',' or ']'`}},
		{"alias", map[int]string{5: "    name: &n Bay", 9: "    name: *n"},
			[]string{`t.yaml:9:11: YAML aliases are not allowed in scene files`}},
		{"second document", map[int]string{40: "  - policies.cedar\n---\nid: other"},
			[]string{`t.yaml:41:1: a scene file holds one YAML document; found another`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := editLines(t, tt.edits)
			s, err := Parse("t.yaml", []byte(src))
			got := problemStrings(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q) problems =\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if (s == nil) == (err == nil) {
				t.Errorf("Parse(%q) = %v, %v; want exactly one of scene and error", tt.name, s, err)
			}
		})
	}
}

func TestParseWholeFile(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty", "", []string{"t.yaml: empty scene file"}},
		{"only a comment", "# nothing here\n", []string{"t.yaml: empty scene file"}},
		{"a list", "- a\n- b\n", []string{"t.yaml:1:1: must be a mapping of fields (id, name, description, zones, twins, collections, policies)"}},
		{"a scalar", "foundry\n", []string{"t.yaml:1:1: must be a mapping of fields (id, name, description, zones, twins, collections, policies)"}},
		{"unclosed flow mapping on line 1", "id: {a: b\n", []string{"t.yaml:2: invalid YAML: did not find expected ',' or '}'"}},
		{"mapping value in a plain scalar", "id: a\nname: b: c\n", []string{"t.yaml:2: invalid YAML: mapping values are not allowed in this context"}},
		{"bad indentation, placed at its block", "id: a\nzones:\n  - id: b\n   name: c\n", []string{"t.yaml:3: invalid YAML: did not find expected '-' indicator"}},
		{"tab indentation", "id: x\n\tname: y\n", []string{"t.yaml:2: invalid YAML: found a tab character that violates indentation"}},
		{"too large", "id: x\n" + strings.Repeat("#", MaxFileSize), []string{"t.yaml: file is larger than 1048576 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.src))
			if got := problemStrings(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q) problems = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

// TestParseReportsEveryProblem guards the promise that an author sees every
// problem of a file at once, each at its own line.
func TestParseReportsEveryProblem(t *testing.T) {
	data, err := os.ReadFile("testdata/three-errors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("foundry/scene.yaml", data)
	want := []string{
		`foundry/scene.yaml:9:10: zones[0].max: max y (0) must be greater than min y (0): a zone needs volume`,
		`foundry/scene.yaml:13:11: twins[0].zone: unknown zone "pres-bay" (did you mean "press-bay"?)`,
		`foundry/scene.yaml:21:15: twins[0].actuators[0].risk: unknown risk "extreme" (want low, medium, high or critical)`,
	}
	if got := problemStrings(t, err); !slices.Equal(got, want) {
		t.Errorf("Parse(three-errors.yaml) problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("LoadError.Error() =\n%s\nwant one problem per line", got)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a/scene.yaml", Line: 3, Column: 7, Msg: "bad"}, "a/scene.yaml:3:7: bad"},
		{Problem{File: "a/scene.yaml", Line: 3, Msg: "bad"}, "a/scene.yaml:3: bad"},
		{Problem{File: "a/scene.yaml", Msg: "bad"}, "a/scene.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Problem%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}
