package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
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

// BenchmarkCheck measures the check on bodies of the sizes the realm reads
// most: a transfer request and a WebAuthn assertion.
func BenchmarkCheck(b *testing.B) {
	transfer := []byte(`{"intent":{"collection":"relics","assetId":"b16-1","amount":"1","from":"0x71C7656EC7ab88b098defB751B7401B5f6d8976F","to":"0x0000000000000000000000000000000000000002","nonce":"1","deadline":"1780000000"},"signature":"0x` + strings.Repeat("ab", 65) + `"}`)
	assertion := []byte(`{"ceremony_id":"` + strings.Repeat("c", 43) + `","credential":{"id":"` + strings.Repeat("i", 43) + `","rawId":"` + strings.Repeat("i", 43) +
		`","type":"public-key","response":{"clientDataJSON":"` + strings.Repeat("d", 400) + `","authenticatorData":"` + strings.Repeat("a", 50) +
		`","signature":"` + strings.Repeat("s", 96) + `","userHandle":"` + strings.Repeat("u", 43) + `"},"authenticatorAttachment":"platform","clientExtensionResults":{}}}`)
	for name, body := range map[string][]byte{"transfer": transfer, "assertion": assertion} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Check(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCheckLargeObjects covers objects past the size at which names move
// into a map, with objects nested inside them.
func TestCheckLargeObjects(t *testing.T) {
	members := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"m%d":{"m%d":1,"inner":[{"m1":2}]},`, i, i)
		}
		b.WriteString(extra)
		b.WriteString(`"last":true}`)
		return b.String()
	}
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"many members", members(3*smallObject, ""), nil},
		{"a duplicate after many", members(3*smallObject, `"M3":0,`), ErrDuplicateMember},
		{"a duplicate among the first", members(smallObject/2, `"m1":0,`), ErrDuplicateMember},
		{"a duplicate at the switch", members(smallObject, `"m0":0,`), ErrDuplicateMember},
		{"same names in sibling objects", `[` + members(2*smallObject, "") + `,` + members(2*smallObject, "") + `]`, nil},
	} {
		err := Check([]byte(tc.in))
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: Check = %v, want %v", tc.name, err, tc.want)
		}
	}
}
