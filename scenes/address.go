package scenes

import (
	"encoding/hex"

	"github.com/ethereum/go-ethereum/common"
)

// checksumAddress returns the EIP-55 form of a 0x address whose 40 hex
// digits are valid in any case. It is go-ethereum's, the one the ledger's
// assets.ParseAddress checks against, so a scene owner and a transfer's
// address are held to the same checksum.
func checksumAddress(addr string) string {
	return common.HexToAddress(addr).Hex()
}

func isHexAddress(s string) bool {
	if len(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	_, err := hex.DecodeString(s[2:])
	return err == nil
}

const zeroAddress = "0x0000000000000000000000000000000000000000"
