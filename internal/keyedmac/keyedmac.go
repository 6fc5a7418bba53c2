package keyedmac

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Size is the length of a tag in bytes.
const Size = sha256.Size

// ErrKey reports a master key that cannot be used.
var ErrKey = errors.New("keyedmac: empty master key")

// Key computes tags under a key derived from a master key. It is safe for
// concurrent use.
type Key struct {
	states sync.Pool // of *state
}

type state struct {
	mac   hash.Hash
	names []byte
}

// Derive returns the Key that HKDF-SHA256 derives from master for label.
func Derive(master []byte, label string) (*Key, error) {
	if len(master) == 0 {
		return nil, ErrKey
	}
	key, err := hkdf.Key(sha256.New, master, nil, label, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("keyedmac: derive the key for %q: %w", label, err)
	}
	k := &Key{}
	k.states.New = func() any { return &state{mac: hmac.New(sha256.New, key), names: make([]byte, 0, 256)} }
	return k, nil
}

// Tag appends to dst the tag of domain, the names and data. The domain and
// names are joined with 0 bytes, so callers keep 0 out of them (or give
// fixed-length names last), then the data's length follows: no two inputs
// give the same bytes. A pooled buffer keeps a tag from allocating when
// dst has room.
func (k *Key) Tag(dst []byte, domain string, data []byte, names ...string) []byte {
	st := k.states.Get().(*state)
	b := append(st.names[:0], domain...)
	for _, n := range names {
		b = append(b, 0)
		b = append(b, n...)
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(len(data)))
	st.mac.Reset()
	st.mac.Write(b)
	st.mac.Write(data)
	out := st.mac.Sum(dst)
	st.names = b
	k.states.Put(st)
	return out
}

// Verify reports, in constant time, whether tag is the tag of domain, the
// names and data.
func (k *Key) Verify(tag []byte, domain string, data []byte, names ...string) bool {
	var buf [Size]byte
	return hmac.Equal(tag, k.Tag(buf[:0], domain, data, names...))
}
