package scenes

import (
	"encoding/hex"

	"golang.org/x/crypto/sha3"
)

// checksumAddress returns the EIP-55 form of a 0x address whose 40 hex
// digits are valid in any case.
func checksumAddress(addr string) string {
	lower := []byte(addr[2:])
	for i, c := range lower {
		if 'A' <= c && c <= 'F' {
			lower[i] = c + ('a' - 'A')
		}
	}
	h := sha3.NewLegacyKeccak256()
	h.Write(lower)
	digest := h.Sum(nil)
	out := make([]byte, 0, 42)
	out = append(out, "0x"...)
	for i, c := range lower {
		nibble := digest[i/2]
		if i%2 == 0 {
			nibble >>= 4
		}
		if c >= 'a' && nibble&0x0f >= 8 {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

func isHexAddress(s string) bool {
	if len(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	_, err := hex.DecodeString(s[2:])
	return err == nil
}

const zeroAddress = "0x0000000000000000000000000000000000000000"
