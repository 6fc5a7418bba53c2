package ident

// MaxLength is the longest id.
const MaxLength = 64

// Valid reports whether s is an id: 1 to MaxLength bytes, each of a-z,
// 0-9 or '-'.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
