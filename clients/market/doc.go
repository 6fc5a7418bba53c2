// Package market is a Go client of a ZeroRealm realm's marketplace API:
// linking a wallet to a signed-in avatar, building and signing EIP-712
// transfer, trade and cancellation intents, applying them, minting, and
// fetching and verifying receipts offline. Signatures come from a Signer,
// a function from EIP-712 digest to signature, so keystores, hardware
// wallets and remote signers fit (KeySigner wraps a raw key). It speaks
// only the wire protocol (JSON over HTTP, eth_signTypedData_v4 payloads),
// hashing typed data with go-ethereum's own EIP-712 code rather than
// trusting the digest a realm sends, so it works against any realm that
// speaks the protocol.
package market
