package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// maxPolicyTokens bounds one policy statement. cedar-go parses and evaluates
// expressions recursively, and a Go stack overflow kills the process instead
// of returning an error, so a single oversized statement in an uploaded scene
// could take the realm down. 20,000 tokens is far above any hand-written
// policy and far below the depth at which the stack runs out.
const maxPolicyTokens = 20_000

// SyntaxError reports where a policy file fails to parse. Line and Column
// are 1-based; Column counts characters, not bytes, as editors do. For most
// errors the position is the token at which cedar-go's parser stopped, which
// is the offending token or the one right after it.
type SyntaxError struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

type srcPos struct {
	line, column int
}

// sourceShape is what a cheap pass over the bytes learns before cedar-go
// parses them: where each statement starts, used to place the few cedar-go
// errors that carry no position.
type sourceShape struct {
	statementStarts []srcPos
}

// scanShape validates what cedar-go either reports without a usable position
// (bad UTF-8, NUL) or cannot survive (oversized statements). It mirrors
// cedar-go's lexical rules only as far as strings and comments go: inside
// them a ';' or a token does not count.
func scanShape(file string, src []byte) (sourceShape, error) {
	var shape sourceShape
	const (
		code = iota
		str
		lineComment
		blockComment
	)
	state := code
	line, col := 1, 1
	tokens := 0
	wantStart := true
	inWord := false
	escaped := false
	var here srcPos
	countToken := func() error {
		if wantStart {
			shape.statementStarts = append(shape.statementStarts, here)
			wantStart = false
		}
		tokens++
		if tokens > maxPolicyTokens {
			return &SyntaxError{File: file, Line: here.line, Column: here.column,
				Msg: fmt.Sprintf("policy statement longer than %d tokens", maxPolicyTokens)}
		}
		return nil
	}
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		here = srcPos{line, col}
		if r == utf8.RuneError && size == 1 {
			return shape, &SyntaxError{File: file, Line: here.line, Column: here.column, Msg: "invalid UTF-8 encoding"}
		}
		if r == 0 {
			return shape, &SyntaxError{File: file, Line: here.line, Column: here.column, Msg: "invalid character NUL"}
		}
		var next rune
		if i+size < len(src) {
			next = rune(src[i+size])
		}
		isWordRune := r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'

		switch state {
		case code:
			switch {
			case r == ' ' || r == '\t' || r == '\r' || r == '\n':
				inWord = false
			case r == '/' && next == '/':
				inWord = false
				state = lineComment
			case r == '/' && next == '*':
				inWord = false
				state = blockComment
				i += size
				col++
				size = 1
			case r == '"':
				inWord = false
				if err := countToken(); err != nil {
					return shape, err
				}
				state = str
			case isWordRune:
				if !inWord {
					if err := countToken(); err != nil {
						return shape, err
					}
				}
				inWord = true
			default:
				inWord = false
				if err := countToken(); err != nil {
					return shape, err
				}
				if r == ';' {
					tokens = 0
					wantStart = true
				}
			}
		case str:
			switch {
			case escaped:
				escaped = false
			case r == '\\':
				escaped = true
			case r == '"':
				state = code
			}
		case lineComment:
			if r == '\n' {
				state = code
			}
		case blockComment:
			if r == '*' && next == '/' {
				i += size
				col++
				size = 1
				state = code
			}
		}

		i += size
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return shape, nil
}

var (
	// cedar-go v1.9 formats positions as "<input>:line:col"; the parser adds
	// the Go-quoted text of the token it stopped at.
	parserErrRE  = regexp.MustCompile(`^parse error at <input>:(\d+):(\d+) ("(?:[^"\\]|\\.)*"): (?s:(.*))$`)
	scannerErrRE = regexp.MustCompile(`^<input>:(\d+):(\d+): (?s:(.*))$`)
	exactRE      = regexp.MustCompile(`^exact got (.*) want (.*)$`)
)

// syntaxError turns a cedar-go parse error into a SyntaxError. failedStatement
// is the index of the statement being parsed, used when cedar-go gives no
// position (integer overflow, bad escapes in string values and patterns).
func syntaxError(file string, shape sourceShape, failedStatement int, err error) *SyntaxError {
	msg := err.Error()
	if m := parserErrRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		tok, uerr := strconv.Unquote(m[3])
		detail := m[4]
		if e := exactRE.FindStringSubmatch(detail); e != nil {
			detail = fmt.Sprintf("expected %q, found %q", e[2], e[1])
		}
		where := "at end of input"
		if uerr != nil || tok != "" {
			where = "near " + m[3]
		}
		if line >= 1 && col >= 1 {
			return &SyntaxError{File: file, Line: line, Column: col, Msg: where + ": " + detail}
		}
		msg = where + ": " + detail
	} else if m := scannerErrRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		if line >= 1 && col >= 1 {
			return &SyntaxError{File: file, Line: line, Column: col, Msg: m[3]}
		}
		msg = m[3]
	}
	pos := srcPos{1, 1}
	if failedStatement < len(shape.statementStarts) {
		pos = shape.statementStarts[failedStatement]
	}
	return &SyntaxError{File: file, Line: pos.line, Column: pos.column, Msg: "in the policy starting here: " + msg}
}
