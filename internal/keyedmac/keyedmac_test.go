package keyedmac

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

// TestTagIsHMACOfTheEncoding checks the tag against an HMAC computed by
// hand over the documented encoding, under the HKDF-derived key.
func TestTagIsHMACOfTheEncoding(t *testing.T) {
	master := bytes.Repeat([]byte{7}, 32)
	k, err := Derive(master, "label/v1")
	if err != nil {
		t.Fatal(err)
	}
	derived, _ := hkdf.Key(sha256.New, master, nil, "label/v1", sha256.Size)
	mac := hmac.New(sha256.New, derived)
	mac.Write([]byte("domain\x00a\x00bc\x00"))
	mac.Write(binary.BigEndian.AppendUint64(nil, 4))
	mac.Write([]byte("data"))
	want := mac.Sum(nil)
	if got := k.Tag(nil, "domain", []byte("data"), "a", "bc"); !bytes.Equal(got, want) {
		t.Fatalf("Tag = %x, want %x", got, want)
	}
	if !k.Verify(want, "domain", []byte("data"), "a", "bc") {
		t.Fatal("Verify refused the right tag")
	}
}

// TestTagSeparatesInputs checks that moving bytes between the domain, the
// names and the data, or changing the label, changes the tag.
func TestTagSeparatesInputs(t *testing.T) {
	master := bytes.Repeat([]byte{1}, 32)
	k, _ := Derive(master, "one")
	other, _ := Derive(master, "two")
	base := k.Tag(nil, "d", []byte("xy"), "a", "b")
	for name, tag := range map[string][]byte{
		"names joined":    k.Tag(nil, "d", []byte("xy"), "ab"),
		"name into data":  k.Tag(nil, "d", []byte("bxy"), "a"),
		"domain changed":  k.Tag(nil, "e", []byte("xy"), "a", "b"),
		"data changed":    k.Tag(nil, "d", []byte("xz"), "a", "b"),
		"another label":   other.Tag(nil, "d", []byte("xy"), "a", "b"),
		"names reordered": k.Tag(nil, "d", []byte("xy"), "b", "a"),
	} {
		if bytes.Equal(tag, base) {
			t.Errorf("%s: same tag as the original", name)
		}
		if k.Verify(tag, "d", []byte("xy"), "a", "b") {
			t.Errorf("%s: Verify accepted it for the original input", name)
		}
	}
	if _, err := Derive(nil, "x"); !errors.Is(err, ErrKey) {
		t.Fatalf("Derive(empty) = %v, want ErrKey", err)
	}
}

func BenchmarkTag(b *testing.B) {
	k, _ := Derive(bytes.Repeat([]byte{3}, 32), "bench")
	data := make([]byte, 512)
	var buf [Size]byte
	b.ReportAllocs()
	for b.Loop() {
		k.Tag(buf[:0], "domain", data, "bucket", "key")
	}
}
