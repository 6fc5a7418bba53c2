package store

import (
	"fmt"
	"strings"
)

const (
	// maxSubjectLen bounds relative subjects and KV keys. NATS itself has
	// no hard limit, but very long subjects bloat every index entry and a
	// realm never needs them; the bound turns a runaway caller into a clear
	// error instead of a slow server.
	maxSubjectLen = 1024

	// maxNameLen keeps "<PREFIX>_<NAME>" a valid JetStream name and a
	// reasonable file name on every platform.
	maxNameLen = 64

	// maxAtomicBatch is the server's default limit on messages per atomic
	// batch; larger batches would be refused after partly streaming.
	maxAtomicBatch = 1000
)

// validateName checks a prefix, stream or bucket name: it becomes part of a
// subject token and of a directory name, so only [A-Za-z0-9_-].
func validateName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %s %q longer than %d bytes", ErrInvalid, what, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '-' && c != '_' {
			return fmt.Errorf("%w: %s %q has %q at byte %d: use letters, digits, '-' or '_'", ErrInvalid, what, name, c, i)
		}
	}
	return nil
}

// validateSubject checks a relative subject that messages are published
// to: non-empty tokens, no wildcards, no whitespace or control bytes.
func validateSubject(subject string) error {
	return checkSubject("subject", subject, false)
}

// validateFilter checks a relative subject filter: like a subject, but '*'
// may stand for one whole token and '>' for the remaining tokens.
func validateFilter(filter string) error {
	return checkSubject("filter", filter, true)
}

func checkSubject(what, subject string, wildcards bool) error {
	if subject == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(subject) > maxSubjectLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, maxSubjectLen)
	}
	tokens := strings.Split(subject, ".")
	for i, tok := range tokens {
		if tok == "" {
			return fmt.Errorf("%w: %s %q has an empty token", ErrInvalid, what, subject)
		}
		if wildcards && (tok == "*" || (tok == ">" && i == len(tokens)-1)) {
			continue
		}
		for j := 0; j < len(tok); j++ {
			c := tok[j]
			switch {
			case c == '*' || c == '>':
				if wildcards {
					return fmt.Errorf("%w: %s %q: wildcard %q must be a whole token ('>' only last)", ErrInvalid, what, subject, c)
				}
				return fmt.Errorf("%w: %s %q has wildcard %q", ErrInvalid, what, subject, c)
			case c <= ' ' || c == 0x7f:
				return fmt.Errorf("%w: %s %q has whitespace or control byte 0x%02x", ErrInvalid, what, subject, c)
			}
		}
	}
	return nil
}

// validateKey checks a KV key against the characters JetStream KV accepts;
// keys end up as subject tokens of the bucket's stream.
func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > maxSubjectLen {
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalid, maxSubjectLen)
	}
	if key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return fmt.Errorf("%w: key %q has an empty token", ErrInvalid, key)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !isAlnum(c) && !strings.ContainsRune("-/_=.", rune(c)) {
			return fmt.Errorf("%w: key %q has %q at byte %d: use letters, digits or one of %q", ErrInvalid, key, c, i, "-/_=.")
		}
	}
	return nil
}

// validateKeyPattern checks a KV watch pattern: a key whose tokens may be
// '*' or, last, '>'.
func validateKeyPattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("%w: empty key pattern", ErrInvalid)
	}
	tokens := strings.Split(pattern, ".")
	for i, tok := range tokens {
		if tok == "*" || (tok == ">" && i == len(tokens)-1) {
			continue
		}
		if err := validateKey(tok); err != nil {
			return fmt.Errorf("key pattern %q: %w", pattern, err)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// subjectMatches reports whether the literal subject is matched by filter
// with NATS wildcard rules. Used to refuse a publish that no stream of ours
// would capture, before it times out waiting for an ack nobody sends.
func subjectMatches(filter, subject string) bool {
	ft := strings.Split(filter, ".")
	st := strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}
