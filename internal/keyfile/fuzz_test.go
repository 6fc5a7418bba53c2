package keyfile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzNextRecord: whatever bytes the check value record in NATS holds
// (anyone who reaches NATS may have written them), a ring's verdict is
// one of: its first key is the cluster's (nil), a well-formed record
// rotated to its first key, or an error; never a panic, and a ring never
// rotates the cluster without holding the key the record names first.
func FuzzNextRecord(f *testing.F) {
	const label = "fuzz/v1"
	k1, k2 := bytes.Repeat([]byte{1}, Size), bytes.Repeat([]byte{2}, Size)
	c1, c2 := CheckValue(k1, label), CheckValue(k2, label)
	f.Add(c1, byte(1))
	f.Add(append(append([]byte{}, c2...), c1...), byte(2))
	f.Add(c1[:31], byte(2))
	f.Add(bytes.Repeat(c1, 20), byte(2))
	f.Add([]byte{}, byte(0))
	f.Fuzz(func(t *testing.T, record []byte, shape byte) {
		ring := [][]byte{k2, k1}
		switch shape % 3 {
		case 1:
			ring = [][]byte{k1}
		case 2:
			ring = [][]byte{k1, k2}
		}
		next, err := nextRecord(record, ring, label)
		first := CheckValue(ring[0], label)
		switch {
		case err != nil:
			if next != nil {
				t.Fatal("a refusal with a record to write")
			}
			if !errors.Is(err, ErrRetired) && !errors.Is(err, ErrMismatch) && !errors.Is(err, errRecordMalformed) {
				t.Fatalf("a refusal without a reason of the package: %v", err)
			}
		case next == nil:
			if len(record) < sha256.Size || !bytes.Equal(record[:sha256.Size], first) {
				t.Fatal("passed a ring whose first key is not the one the record names first")
			}
		default:
			if len(next)%sha256.Size != 0 || len(next) > (1+maxRetired)*sha256.Size || !bytes.Equal(next[:sha256.Size], first) {
				t.Fatalf("rotated to a record of %d bytes not headed by the ring's first key", len(next))
			}
			held := false
			for _, k := range ring[1:] {
				held = held || bytes.Equal(CheckValue(k, label), record[:sha256.Size])
			}
			if !held {
				t.Fatal("rotated without holding the key the record names first")
			}
		}
	})
}
