// Package assets is the virtual asset ledger: collections (unique items and
// fungible balances), EIP-712 transfer and trade intents signed by owners,
// the per-asset ledger subjects on JetStream appended with compare-and-set,
// and the receipts and checkpoints the realm countersigns so that anyone can
// verify a transfer with standard Ethereum tooling.
package assets
