package ident

import (
	"regexp"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, s := range []string{"a", "press-1", "0", "-", "foundry-control-room", strings.Repeat("z", MaxLength)} {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "Press", "press_1", "press.1", "press 1", "press/1", "*", ">", "é", "press\x00", strings.Repeat("z", MaxLength+1)} {
		if Valid(s) {
			t.Errorf("Valid(%q) = true, want false", s)
		}
	}
}

// The definition in words, as a regular expression.
var idPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// FuzzValid: Valid accepts exactly what the documented alphabet and
// length allow.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"press-1", "", "A", "a.b", "ÿ", strings.Repeat("a", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Valid(s), idPattern.MatchString(s); got != want {
			t.Fatalf("Valid(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
