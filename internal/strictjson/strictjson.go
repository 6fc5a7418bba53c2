package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Sentinel errors, matched with errors.Is; the message says where.
var (
	// ErrDuplicateMember: an object names a member twice, or two members
	// whose names encoding/json would match to the same field.
	ErrDuplicateMember = errors.New("duplicate member")
	// ErrInvalidUTF8: the text, or an escaped string in it, is not UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrSyntax: not one well-formed JSON value.
	ErrSyntax = errors.New("invalid JSON")
)

// Check reports whether data is exactly one JSON value (surrounding white
// space allowed) with only valid UTF-8 and no object member named twice,
// case-insensitively. It decodes nothing; callers decode with encoding/json
// afterwards, keeping its field semantics.
func Check(data []byte) error {
	if i := invalidUTF8At(data); i >= 0 {
		return fmt.Errorf("%w at byte %d", ErrInvalidUTF8, i)
	}
	// jsontext bounds nesting at 10,000 levels, as encoding/json does.
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	// One set of folded names per open object; arrays push nil.
	var names []map[string]struct{}
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return syntaxError(err, dec)
		}
		switch k := tok.Kind(); {
		case k == '{':
			names = append(names, map[string]struct{}{})
		case k == '[':
			names = append(names, nil)
		case k == '}' || k == ']':
			names = names[:len(names)-1]
		case k == '"' && len(names) > 0 && names[len(names)-1] != nil && isName(dec):
			// jsontext already refuses exact duplicates; this catches the
			// names that only encoding/json's case folding makes one.
			name := tok.String()
			key := fold(name)
			obj := names[len(names)-1]
			if _, dup := obj[key]; dup {
				return fmt.Errorf("%w %s at %s", ErrDuplicateMember, quote(name), pointer(dec))
			}
			obj[key] = struct{}{}
		}
		if len(names) == 0 {
			break
		}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return fmt.Errorf("%w: data after the value at byte %d", ErrSyntax, dec.InputOffset())
	}
	return nil
}

// isName reports whether the string just read is an object member's name
// rather than its value: after a name the decoder's innermost object has an
// odd number of tokens.
func isName(dec *jsontext.Decoder) bool {
	_, length := dec.StackIndex(dec.StackDepth())
	return length%2 == 1
}

func pointer(dec *jsontext.Decoder) string {
	p := string(dec.StackPointer().Parent())
	if p == "" {
		return "/"
	}
	return quote(p)
}

func syntaxError(err error, dec *jsontext.Decoder) error {
	if err == io.EOF {
		return fmt.Errorf("%w: empty input", ErrSyntax)
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		switch {
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			at := string(se.JSONPointer.Parent())
			if at == "" {
				at = "/"
			} else {
				at = quote(at)
			}
			return fmt.Errorf("%w %s at %s", ErrDuplicateMember, quote(se.JSONPointer.LastToken()), at)
		case strings.Contains(se.Err.Error(), "UTF-8"), strings.Contains(se.Err.Error(), "surrogate"):
			// jsontext exports no sentinel for these; an escape such as
			// \ud800 names no character, which encoding/json would replace.
			return fmt.Errorf("%w at byte %d", ErrInvalidUTF8, se.ByteOffset)
		}
		return fmt.Errorf("%w at byte %d", ErrSyntax, se.ByteOffset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: unexpected end of input", ErrSyntax)
	}
	return fmt.Errorf("%w at byte %d", ErrSyntax, dec.InputOffset())
}

// quote bounds and escapes a name for an error message: the input is
// hostile and messages reach logs and clients.
func quote(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return strconv.Quote(s)
}

// fold maps a name to a key shared by every name encoding/json would match
// to the same field: each rune becomes the smallest of its simple case
// folding orbit (so K, k and the Kelvin sign are one).
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// invalidUTF8At returns the offset of the first byte of data that is not
// UTF-8, or -1.
func invalidUTF8At(data []byte) int {
	if utf8.Valid(data) {
		return -1
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}
