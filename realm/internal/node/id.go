package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// NamePattern is what a node name (and a subject prefix) may be.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// LoadOrCreateID gives a node a stable name across restarts, so its audit
// chain continues where it left off: read from DataDir/node-id, or made
// from the host name and written there on the first start.
func LoadOrCreateID(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !NamePattern.MatchString(id) {
			return "", fmt.Errorf("%s holds %q, not a node name: fix or delete the file", p, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	host, _ := os.Hostname()
	host = sanitizeName(host)
	id := "node-" + hex.EncodeToString(raw[:])
	if host != "" {
		id = host + "-" + hex.EncodeToString(raw[:])
	}
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

func sanitizeName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteRune('-')
		}
		if b.Len() >= 48 {
			break
		}
	}
	return b.String()
}
