package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
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
	c := checkers.Get().(*checker)
	defer c.release()
	c.rd.Reset(data)
	// jsontext bounds nesting at 10,000 levels, as encoding/json does.
	c.dec.Reset(&c.rd)
	dec := &c.dec
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return syntaxError(err, dec)
		}
		switch k := tok.Kind(); {
		case k == '{':
			c.open(true)
		case k == '[':
			c.open(false)
		case k == '}' || k == ']':
			c.close()
		case k == '"' && c.inObject() && isName(dec):
			// jsontext already refuses exact duplicates; this catches the
			// names that only encoding/json's case folding makes one.
			if c.seen(tok.String()) {
				return fmt.Errorf("%w %s at %s", ErrDuplicateMember, quote(tok.String()), pointer(dec))
			}
		}
		if len(c.levels) == 0 {
			break
		}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return fmt.Errorf("%w: data after the value at byte %d", ErrSyntax, dec.InputOffset())
	}
	return nil
}

// checker is Check's reusable state: its decoder, and the folded member
// names of every open object in one arena, so that a body's check costs no
// allocation per name.
type checker struct {
	rd     bytes.Reader
	dec    jsontext.Decoder
	arena  []byte
	spans  []span  // folded names of the open objects, innermost last
	levels []level // open objects and arrays
}

type span struct{ start, end int }

type level struct {
	object bool
	first  int                 // its first name in spans
	large  map[string]struct{} // its names once there are many, for constant-time lookups
}

// smallObject is how many members an object has before its names move
// into a map: below it, a scan is cheaper than hashing.
const smallObject = 16

var checkers = sync.Pool{New: func() any { return new(checker) }}

func (c *checker) release() {
	c.rd.Reset(nil)
	c.dec.Reset(&c.rd)
	c.arena, c.spans, c.levels = c.arena[:0], c.spans[:0], c.levels[:0]
	checkers.Put(c)
}

func (c *checker) open(object bool) {
	c.levels = append(c.levels, level{object: object, first: len(c.spans)})
}

func (c *checker) close() {
	l := c.levels[len(c.levels)-1]
	c.levels = c.levels[:len(c.levels)-1]
	if l.object {
		if len(c.spans) > l.first {
			c.arena = c.arena[:c.spans[l.first].start]
		}
		c.spans = c.spans[:l.first]
	}
}

func (c *checker) inObject() bool {
	return len(c.levels) > 0 && c.levels[len(c.levels)-1].object
}

// seen records name in the innermost object and reports whether a name
// equal to it under case folding was there already.
func (c *checker) seen(name string) bool {
	l := &c.levels[len(c.levels)-1]
	start := len(c.arena)
	c.arena = appendFolded(c.arena, name)
	key := c.arena[start:]
	if l.large != nil {
		if _, dup := l.large[string(key)]; dup {
			return true
		}
		l.large[string(key)] = struct{}{}
		c.arena = c.arena[:start]
		return false
	}
	for _, sp := range c.spans[l.first:] {
		if bytes.Equal(c.arena[sp.start:sp.end], key) {
			return true
		}
	}
	c.spans = append(c.spans, span{start, len(c.arena)})
	if n := len(c.spans) - l.first; n > smallObject {
		l.large = make(map[string]struct{}, 2*n)
		for _, sp := range c.spans[l.first:] {
			l.large[string(c.arena[sp.start:sp.end])] = struct{}{}
		}
		// The map holds them now; keep one span so close knows where the
		// object's part of the arena starts.
		c.arena = c.arena[:c.spans[l.first].start]
		c.spans = append(c.spans[:l.first], span{len(c.arena), len(c.arena)})
	}
	return false
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

// appendFolded appends to dst a key shared by every name encoding/json
// would match to the same field: each rune becomes the smallest of its
// simple case folding orbit (so K, k and the Kelvin sign are one; for
// ASCII letters, the upper case).
func appendFolded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return appendFoldedRunes(dst, s[i:])
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func appendFoldedRunes(dst []byte, s string) []byte {
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		dst = utf8.AppendRune(dst, least)
	}
	return dst
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
