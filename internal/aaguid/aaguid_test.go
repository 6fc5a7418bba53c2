package aaguid

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestEmbeddedListIsTheRecordedVersion(t *testing.T) {
	sum := sha256.Sum256(listJSON)
	if got := hex.EncodeToString(sum[:]); got != SHA256 {
		t.Fatalf("aaguids.json hashes to %s, the recorded version %s is %s: record the version it is", got, Version, SHA256)
	}
	if Len() < 100 {
		t.Fatalf("the list names %d authenticators; want the whole community list", Len())
	}
}

func TestName(t *testing.T) {
	for _, c := range []struct {
		aaguid string
		want   string
		ok     bool
	}{
		{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager", true},
		{"fbfc3007154e4ecc8c0b6e020557d7bd", "Apple Passwords", true},
		{"08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello", true},
		{"00000000-0000-0000-0000-000000000000", "", false},
		{"0123456789abcdef0123456789abcdef", "", false},
	} {
		id, err := Parse(c.aaguid)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := Name(id[:]); got != c.want || ok != c.ok {
			t.Errorf("Name(%s) = %q, %v; want %q, %v", c.aaguid, got, ok, c.want, c.ok)
		}
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, 17)} {
		if got, ok := Name(bad); ok || got != "" {
			t.Errorf("Name(%x) = %q, %v; want unknown", bad, got, ok)
		}
	}
}

func TestParseRefusesWhatIsNotAnAAGUID(t *testing.T) {
	for _, s := range []string{"", "xyz", "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d", "zz9b8d66-4d01-1d21-3ce4-b6b48cb575d4"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}
