// Package ethsig reads, makes and checks the 65-byte secp256k1 signatures
// Ethereum tooling exchanges (r || s || v, v = 27 or 28), for every
// EIP-712 document the realm signs or accepts: asset intents and receipts,
// command grants, acknowledgements and revocation notices.
//
// It refuses the second, malleated encoding of a signature (s in the upper
// half of the curve order) on every path, because go-ethereum's Ecrecover
// accepts it and a signature that can be re-encoded can be replayed under a
// new identity.
package ethsig
