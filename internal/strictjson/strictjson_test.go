package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
		msg      string
	}{
		{"object", `{"op":"set","value":1.5,"list":[{"a":1},{"a":2}]}`, nil, ""},
		{"scalar", ` 42 `, nil, ""},
		{"same name in sibling objects", `[{"a":1},{"a":2}]`, nil, ""},
		{"name equal to a value", `{"a":"a","b":"a"}`, nil, ""},
		{"duplicate at the top", `{"value":1,"value":2.4}`, ErrDuplicateMember, `duplicate member "value" at /`},
		{"duplicate nested", `{"response":{"x":1,"y":{"s":1,"s":2}}}`, ErrDuplicateMember, `duplicate member "s" at "/response/y"`},
		{"duplicate in an array's object", `[1,{"k":1,"k":1}]`, ErrDuplicateMember, `duplicate member "k" at "/1"`},
		{"duplicate by case", `{"value":1,"Value":2.4}`, ErrDuplicateMember, `duplicate member "Value" at /`},
		{"duplicate by Kelvin sign", "{\"k\":1,\"\u212a\":2}", ErrDuplicateMember, "duplicate member \"\u212a\" at /"},
		{"duplicate by escape", `{"value":1,"v\u0061lue":2}`, ErrDuplicateMember, `duplicate member "value" at /`},
		{"invalid byte", "{\"reason\":\"caf\xe9\"}", ErrInvalidUTF8, "invalid UTF-8 at byte 14"},
		{"lone surrogate escape", `{"reason":"\ud800"}`, ErrInvalidUTF8, "at byte 11"},
		{"trailing data", `{"a":1}{"a":2}`, ErrSyntax, "data after the value"},
		{"truncated", `{"a":`, ErrSyntax, ""},
		{"empty", ``, ErrSyntax, "empty input"},
		{"not JSON", `{a:1}`, ErrSyntax, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tc.in, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Check(%q) = %v, want %v containing %q", tc.in, err, tc.want, tc.msg)
			}
		})
	}
}

func TestCheckBoundsTheNameItQuotes(t *testing.T) {
	name := strings.Repeat("n", 1000)
	err := Check([]byte(`{"` + name + `":1,"` + name + `":2}`))
	if !errors.Is(err, ErrDuplicateMember) || len(err.Error()) > 120 {
		t.Fatalf("Check = %v, want a short duplicate-member error", err)
	}
}

// FuzzCheck holds Check to what it promises: what it accepts is one valid
// JSON value of valid UTF-8 that encoding/json also accepts, and it never
// panics.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"value":1,"value":2.4}`, `{"a":[1,{"b":"c"}]}`, "\"\xff\"", `{"A":1,"a":2}`, `[[[]]]`, `{"x":"\ud83d\ude00"}`, `1 2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("Check accepted %q, which encoding/json refuses", data)
		}
		if err != nil && !errors.Is(err, ErrDuplicateMember) && !errors.Is(err, ErrInvalidUTF8) && !errors.Is(err, ErrSyntax) {
			t.Fatalf("Check(%q) = %v, not one of the sentinel errors", data, err)
		}
		if err == nil {
			var v any
			if json.Unmarshal(data, &v) != nil {
				t.Fatalf("Check accepted %q, which encoding/json cannot decode", data)
			}
		}
	})
}
