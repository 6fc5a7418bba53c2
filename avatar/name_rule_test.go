package avatar

import (
	"regexp"
	"strings"
	"testing"
)

// TestNamePatternIsValidateName keeps the published handle rule and the
// one the realm enforces the same: clients validate with NamePattern
// before a ceremony, and a handle it accepts must not be refused after.
func TestNamePatternIsValidateName(t *testing.T) {
	re := regexp.MustCompile(NamePattern)
	names := []string{"", "a", "ab", "abc", "nu", "ada", "ADA", "ada lovelace", "ada_l-1", "über", "a.b", "a\x00b", "0123456789",
		strings.Repeat("a", MaxNameLen), strings.Repeat("a", MaxNameLen+1), strings.Repeat("_", MinNameLen), "grace\n"}
	for c := 0; c < 256; c++ {
		names = append(names, "ab"+string(rune(c)))
	}
	for _, name := range names {
		valid := ValidateName(name) == nil
		if matched := re.MatchString(name); matched != valid {
			t.Errorf("%q: NamePattern matches %v, ValidateName accepts %v", name, matched, valid)
		}
	}
}

func FuzzNamePatternIsValidateName(f *testing.F) {
	re := regexp.MustCompile(NamePattern)
	for _, s := range []string{"ada", "nu", "ADA", "a-b_c", "ab\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if valid, matched := ValidateName(name) == nil, re.MatchString(name); valid != matched {
			t.Fatalf("%q: NamePattern matches %v, ValidateName accepts %v", name, matched, valid)
		}
	})
}
