package policy

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func mustParse(t testing.TB, name, src string) *Set {
	t.Helper()
	s, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("Parse(%q) error: %v", name, err)
	}
	return s
}

func TestParseIDs(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"empty.cedar", "", []string{}},
		{"comments.cedar", "// nothing here\n/* nor here */\n", []string{}},
		{"plain.cedar", "permit (principal, action, resource);\nforbid (principal, action, resource);", []string{"plain.cedar#0", "plain.cedar#1"}},
		{"mixed.cedar", "permit (principal, action, resource);\n@id(\"named\") @note(\"x\")\nforbid (principal, action, resource);\npermit (principal, action, resource);",
			[]string{"mixed.cedar#0", "named", "mixed.cedar#2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.name, tt.src)
			if got := s.IDs(); !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q).IDs() = %q, want %q", tt.name, got, tt.want)
			}
			if got := s.Len(); got != len(tt.want) {
				t.Errorf("Parse(%q).Len() = %d, want %d", tt.name, got, len(tt.want))
			}
		})
	}
}

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"realm.cedar", []string{"suspended-avatars-do-nothing", "trusted-avatars-enter-public-scenes", "members-enter-their-scenes", "owners-transfer-their-assets", "realm.cedar#4"}},
		{"foundry.cedar", []string{"foundry-operators-command", "foundry-no-commands-at-night", "foundry.cedar#2"}},
		{"edge.cedar", []string{"ip-and-sets", "is-in-and-has"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s, err := Load(os.DirFS("testdata"), tt.file)
			if err != nil {
				t.Fatalf("Load(%q) error: %v", tt.file, err)
			}
			if got := s.IDs(); !slices.Equal(got, tt.want) {
				t.Errorf("Load(%q).IDs() = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

func TestSyntaxErrorPositions(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{
			name: "missing semicolon at end",
			src:  "permit (principal, action, resource)\n",
			want: `a.cedar:2:1: at end of input: expected ";", found ""`,
		},
		{
			name: "missing comma",
			// The parser stops at the comma after the unexpected `action`.
			src:  "permit (principal, action, resource);\n\nforbid (principal action, resource);",
			want: `a.cedar:3:25: near ",": expected ",", found "action"`,
		},
		{
			name: "unknown effect",
			src:  "permit (principal, action, resource);\n  allow (principal, action, resource);",
			want: `a.cedar:2:9: near "(": unexpected effect: allow`,
		},
		{
			name: "unterminated string",
			src:  "permit (principal, action, resource)\nwhen { context.x == \"a };",
			want: "a.cedar:2:21: literal not terminated",
		},
		{
			name: "unterminated comment",
			src:  "permit (principal, action, resource); /* never closed",
			want: "a.cedar:1:39: comment not terminated",
		},
		{
			name: "invalid UTF-8 with multibyte text before it",
			src:  "// héllo\npermit (principal, action, resource)\nwhen { context.x == \"é\xff\" };",
			want: "a.cedar:3:23: invalid UTF-8 encoding",
		},
		{
			name: "NUL byte",
			src:  "permit (principal, action, resource);\n\x00",
			want: "a.cedar:2:1: invalid character NUL",
		},
		{
			name: "integer overflow has no parser position",
			src:  "permit (principal, action, resource);\n\n  @id(\"big\")\n  permit (principal, action, resource) when { context.n == 99999999999999999999 };",
			want: `a.cedar:3:3: in the policy starting here: strconv.ParseInt: parsing "99999999999999999999": value out of range`,
		},
		{
			name: "empty id",
			src:  "permit (principal, action, resource);\n@id(\"\") permit (principal, action, resource);",
			want: `a.cedar:2:1: empty @id("") annotation`,
		},
		{
			name: "oversized statement",
			src:  "permit (principal, action, resource) when {" + strings.Repeat(" true &&", maxPolicyTokens) + " true };",
			want: "a.cedar:1:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("a.cedar", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil; want error %q", tt.src, s.IDs(), tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %v, want *SyntaxError", tt.src, err, err)
			}
			if got := err.Error(); got != tt.want && !(strings.HasSuffix(tt.want, ":") && strings.HasPrefix(got, tt.want)) {
				t.Errorf("Parse(%q) error = %q, want %q", tt.src, got, tt.want)
			}
			if se.File != "a.cedar" || se.Line < 1 || se.Column < 1 {
				t.Errorf("Parse(%q) error = %+v, want file a.cedar and 1-based position", tt.src, *se)
			}
		})
	}
}

func TestDuplicateIDs(t *testing.T) {
	realm := mustParse(t, "realm.cedar", "@id(\"shared\")\npermit (principal, action, resource);")
	scene := mustParse(t, "scene.cedar", "permit (principal, action, resource);\n\n@id(\"shared\")\nforbid (principal, action, resource);")
	other := mustParse(t, "other.cedar", "@id(\"other\")\npermit (principal, action, resource);")

	tests := []struct {
		name    string
		sets    []*Set
		wantErr string // "" for success
		wantIDs []string
	}{
		{"distinct", []*Set{realm, other}, "", []string{"shared", "other"}},
		{"nil skipped", []*Set{nil, realm, nil}, "", []string{"shared"}},
		{"none", nil, "", []string{}},
		{"duplicate across files", []*Set{realm, scene}, `policy: duplicate policy id "shared": realm.cedar:1 and scene.cedar:3`, nil},
		{"same set twice", []*Set{other, other}, `policy: duplicate policy id "other": other.cedar:1 and other.cedar:1`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Merge(tt.sets...)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrDuplicateID) || err.Error() != tt.wantErr {
					t.Fatalf("Merge() error = %v, want %q wrapping ErrDuplicateID", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Merge() error: %v", err)
			}
			if got := s.IDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("Merge().IDs() = %q, want %q", got, tt.wantIDs)
			}
		})
	}
	// Merging must leave its inputs alone.
	if got := realm.IDs(); !slices.Equal(got, []string{"shared"}) {
		t.Errorf("realm.IDs() after Merge = %q, want [shared]", got)
	}

	_, err := Parse("dup.cedar", []byte("@id(\"x\") permit (principal, action, resource);\n@id(\"x\") forbid (principal, action, resource);"))
	if !errors.Is(err, ErrDuplicateID) {
		t.Errorf("Parse(dup.cedar) error = %v, want ErrDuplicateID", err)
	}
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"realm/base.cedar":    {Data: []byte("@id(\"base\") permit (principal, action, resource);")},
		"scenes/hall.cedar":   {Data: []byte("permit (principal, action, resource);\nforbid (principal, action, resource);")},
		"scenes/broken.cedar": {Data: []byte("permit (principal, action,\n resource")},
		"scenes/dup.cedar":    {Data: []byte("@id(\"base\") forbid (principal, action, resource);")},
	}
	t.Run("merges in order", func(t *testing.T) {
		s, err := Load(fsys, "realm/base.cedar", "scenes/hall.cedar")
		if err != nil {
			t.Fatalf("Load() error: %v", err)
		}
		want := []string{"base", "scenes/hall.cedar#0", "scenes/hall.cedar#1"}
		if got := s.IDs(); !slices.Equal(got, want) {
			t.Errorf("Load().IDs() = %q, want %q", got, want)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(fsys, "realm/base.cedar", "scenes/nope.cedar")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("syntax error names the file", func(t *testing.T) {
		_, err := Load(fsys, "scenes/broken.cedar")
		var se *SyntaxError
		if !errors.As(err, &se) || se.File != "scenes/broken.cedar" || se.Line != 2 {
			t.Errorf("Load(broken) error = %v, want *SyntaxError at scenes/broken.cedar:2", err)
		}
	})
	t.Run("duplicate across files", func(t *testing.T) {
		_, err := Load(fsys, "realm/base.cedar", "scenes/dup.cedar")
		if !errors.Is(err, ErrDuplicateID) {
			t.Errorf("Load(dup) error = %v, want ErrDuplicateID", err)
		}
	})
}
