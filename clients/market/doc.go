// Package market is a Go client of a ZeroRealm realm's marketplace API:
// linking a wallet to a signed-in avatar, building and signing EIP-712
// transfer and trade intents, applying them, and fetching and verifying
// receipts offline. It speaks only the wire protocol (JSON over HTTP,
// eth_signTypedData_v4 payloads), hashing typed data with go-ethereum's
// own EIP-712 code rather than trusting the digest a realm sends, so it
// works against any realm that speaks the protocol.
package market
