package scenes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problem is one thing wrong with a scene definition, placed in its file.
// Line and Column start at 1; 0 means unknown.
type Problem struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// String formats the problem as "file:line:col: msg", leaving out what is
// unknown, so editors and terminals can jump to it.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// LoadError carries every problem found in a load, so that an author fixes
// a scene in one pass instead of one error per attempt.
type LoadError struct {
	Problems []Problem
}

// Error returns one problem per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// maxMessageRunes bounds a problem's message. Messages quote what they
// found (an unknown field, an id, a parser's token), and a file can hold
// anything: a bounded, escaped excerpt says enough to find the mistake and
// cannot replay a file into logs or a terminal.
const maxMessageRunes = 200

// clipMessage escapes control characters and invalid UTF-8 in msg and cuts
// it to maxMessageRunes.
func clipMessage(msg string) string {
	var b strings.Builder
	for i, n := 0, 0; i < len(msg); n++ {
		if n == maxMessageRunes {
			b.WriteString("…")
			break
		}
		r, size := utf8.DecodeRuneInString(msg[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, msg[i])
		case !unicode.IsPrint(r) && r != ' ':
			q := strconv.QuoteRune(r) // '\n', '\x00', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// loadError sorts problems by place and clips their messages.
func loadError(problems []Problem) *LoadError {
	sortProblems(problems)
	for i := range problems {
		problems[i].Msg = clipMessage(problems[i].Msg)
	}
	return &LoadError{Problems: problems}
}

func sortProblems(problems []Problem) {
	slices.SortStableFunc(problems, func(a, b Problem) int {
		switch {
		case problemLess(a, b):
			return -1
		case problemLess(b, a):
			return 1
		}
		return 0
	})
}

func problemLess(a, b Problem) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
}
