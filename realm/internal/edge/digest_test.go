package edge

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
)

func TestActionDigestsReadAsPublished(t *testing.T) {
	d := ActionDigest("zerorealm/test/v1", []byte("subject"))
	back, err := ParseDigest(DigestHex(d))
	if err != nil || !bytes.Equal(back, d) {
		t.Fatalf("ParseDigest(DigestHex(d)) = %x, %v; want %x", back, err, d)
	}
	if none, err := ParseDigest(""); none != nil || err != nil || DigestHex(nil) != "" {
		t.Fatalf("no digest = %x, %v, %q; want none both ways", none, err, DigestHex(nil))
	}
	// The domain separates actions: the same subject under another action
	// is another digest.
	if bytes.Equal(d, ActionDigest("zerorealm/other/v1", []byte("subject"))) {
		t.Fatal("two actions of one subject share a digest")
	}
	for _, bad := range []string{DigestHex(d)[2:], "0x" + DigestHex(d)[4:], DigestHex(d) + "00", "0X" + DigestHex(d)[2:], DigestHex(d)[:65] + "g"} {
		var he *Error
		if _, err := ParseDigest(bad); !errors.As(err, &he) || he.Status != http.StatusBadRequest {
			t.Errorf("ParseDigest(%q) = %v, want a 400", bad, err)
		}
	}
}
