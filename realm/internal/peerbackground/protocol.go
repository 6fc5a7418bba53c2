package peerbackground

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// The first lines of the two notes. A version names the whole layout:
// a reader refuses one it does not know rather than guess.
const (
	requestHeader = "zerorealm/background-request/v1"
	shareHeader   = "zerorealm/background/v1"
)

// KeySuffix sits between the realm's name (its WebAuthn RP id) and the
// node in the name of a node's background key:
// "<realm>/zerorealm/background/<node>".
const KeySuffix = "/zerorealm/background/"

// KeyName names a node's background key.
func KeyName(realm, node string) string { return realm + KeySuffix + node }

// RealmKeyName names the realm's own background key, the one every node of
// the realm holds: "<realm>/zerorealm/background". A peer that pins it
// takes the notes of every node the realm runs, the ones it adds later
// included.
func RealmKeyName(realm string) string { return realm + strings.TrimSuffix(KeySuffix, "/") }

// realmOfKey is the realm a background key's name names, a node's or the
// realm's own, "" if the name is not one.
func realmOfKey(name string) string {
	if r, ok := strings.CutSuffix(name, strings.TrimSuffix(KeySuffix, "/")); ok {
		return r
	}
	i := strings.LastIndex(name, KeySuffix)
	if i <= 0 || i+len(KeySuffix) == len(name) {
		return ""
	}
	return name[:i]
}

// nonceSize is the size of a request's nonce: enough that two requests
// never share one by chance.
const nonceSize = 16

// ErrMalformed is wrapped by every refusal of a note's text that does not
// follow its layout.
var ErrMalformed = errors.New("peerbackground: malformed note")

// Request is what a reading node asks: the statistics of Realm, now
// (Time), once (Nonce). Its signature names the reader.
type Request struct {
	Realm string
	Time  time.Time
	Nonce []byte
}

// newRequest is a request to realm at now, with a fresh nonce.
func newRequest(realm string, now time.Time) Request {
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce) // crypto/rand never fails on the platforms Go supports
	return Request{Realm: realm, Time: now.UTC().Truncate(time.Second), Nonce: nonce}
}

// Text is the request's note text.
func (r Request) Text() string {
	var b strings.Builder
	b.WriteString(requestHeader + "\n")
	b.WriteString("realm " + r.Realm + "\n")
	b.WriteString("time " + r.Time.UTC().Format(time.RFC3339) + "\n")
	b.WriteString("nonce " + base64.RawURLEncoding.EncodeToString(r.Nonce) + "\n")
	return b.String()
}

// ParseRequest reads a request's note text (already verified): exactly
// its four lines, in order.
func ParseRequest(text string) (Request, error) {
	lines, err := noteLines(text, requestHeader, "realm", "time", "nonce")
	if err != nil {
		return Request{}, err
	}
	var r Request
	if r.Realm = lines[0]; !validRealm(r.Realm) {
		return Request{}, fmt.Errorf("%w: realm %q is not a realm name", ErrMalformed, r.Realm)
	}
	if r.Time, err = parseTime(lines[1]); err != nil {
		return Request{}, err
	}
	if r.Nonce, err = parseNonce(lines[2]); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Share is a node's answer: the statistics of Realm's people, given to
// Reader (a background key's name) in answer to the request with Nonce.
type Share struct {
	Realm      string
	Reader     string
	Time       time.Time
	Nonce      []byte
	Statistics *biometrics.Background
}

// Text is the share's note text.
func (s Share) Text() (string, error) {
	stats, err := s.Statistics.MarshalBinary()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(shareHeader + "\n")
	b.WriteString("realm " + s.Realm + "\n")
	b.WriteString("reader " + s.Reader + "\n")
	b.WriteString("time " + s.Time.UTC().Format(time.RFC3339) + "\n")
	b.WriteString("nonce " + base64.RawURLEncoding.EncodeToString(s.Nonce) + "\n")
	b.WriteString("people " + strconv.Itoa(s.Statistics.People) + "\n")
	b.WriteString("statistics " + base64.StdEncoding.EncodeToString(stats) + "\n")
	return b.String(), nil
}

// ParseShare reads a share's note text (already verified): exactly its
// seven lines, in order, and statistics that decode and count the people
// the text says.
func ParseShare(text string) (Share, error) {
	lines, err := noteLines(text, shareHeader, "realm", "reader", "time", "nonce", "people", "statistics")
	if err != nil {
		return Share{}, err
	}
	var s Share
	if s.Realm = lines[0]; !validRealm(s.Realm) {
		return Share{}, fmt.Errorf("%w: realm %q is not a realm name", ErrMalformed, s.Realm)
	}
	if s.Reader = lines[1]; realmOfKey(s.Reader) == "" {
		return Share{}, fmt.Errorf("%w: reader %q is not a background key's name", ErrMalformed, s.Reader)
	}
	if s.Time, err = parseTime(lines[2]); err != nil {
		return Share{}, err
	}
	if s.Nonce, err = parseNonce(lines[3]); err != nil {
		return Share{}, err
	}
	people, err := strconv.Atoi(lines[4])
	if err != nil || people < 0 || strconv.Itoa(people) != lines[4] {
		return Share{}, fmt.Errorf("%w: people %q is not a count", ErrMalformed, lines[4])
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[5])
	if err != nil {
		return Share{}, fmt.Errorf("%w: statistics are not base64: %w", ErrMalformed, err)
	}
	s.Statistics = &biometrics.Background{}
	if err := s.Statistics.UnmarshalBinary(raw); err != nil {
		return Share{}, fmt.Errorf("%w: statistics: %w", ErrMalformed, err)
	}
	if s.Statistics.People != people {
		return Share{}, fmt.Errorf("%w: the text says %d people, the statistics count %d", ErrMalformed, people, s.Statistics.People)
	}
	return s, nil
}

// noteLines checks a note text's header and its "key value" lines, named
// keys in order and nothing else, and returns the values.
func noteLines(text, header string, keys ...string) ([]string, error) {
	body, ok := strings.CutPrefix(text, header+"\n")
	if !ok {
		first, _, _ := strings.Cut(text, "\n")
		return nil, fmt.Errorf("%w: first line %q, want %q", ErrMalformed, clip(first), header)
	}
	lines := strings.Split(body, "\n")
	if len(lines) != len(keys)+1 || lines[len(keys)] != "" {
		return nil, fmt.Errorf("%w: %d lines after %q, want %d", ErrMalformed, len(lines)-1, header, len(keys))
	}
	values := make([]string, len(keys))
	for i, k := range keys {
		v, ok := strings.CutPrefix(lines[i], k+" ")
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: line %d is %q, want %q and a value", ErrMalformed, i+2, clip(lines[i]), k)
		}
		values[i] = v
	}
	return values, nil
}

// validRealm: a realm's name is its RP id, a host name: no spaces, no
// slashes, nothing a key name could not carry.
func validRealm(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// parseTime reads a note's time: RFC 3339 in UTC to the second, written
// one way only (time.Parse would also take a fraction of a second).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.UTC().Format(time.RFC3339) != s {
		return time.Time{}, fmt.Errorf("%w: time %q is not an RFC 3339 UTC time to the second", ErrMalformed, clip(s))
	}
	return t, nil
}

func parseNonce(s string) ([]byte, error) {
	n, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(n) != nonceSize {
		return nil, fmt.Errorf("%w: nonce %q is not %d bytes of unpadded base64url", ErrMalformed, clip(s), nonceSize)
	}
	return n, nil
}

// clip keeps an echoed value short: a refusal names what it refused, not
// a megabyte of it.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
