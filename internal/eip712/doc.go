// Package eip712 is the project's one EIP-712 encoder: the domain
// separator, the struct encoding of the realm's fixed message types, and
// the signing hash keccak256(0x19 0x01 || domainSeparator || hashStruct).
//
// The realm hashes typed data on its hottest paths (every transfer, every
// gated command several times), so the encoder is written for the types
// it meets, one 32-byte word per member, with no reflection: pooled
// buffers and hasher, and the hashes of strings that repeat (twin and
// actuator ids, collections, chains) remembered in a bounded cache. The
// asset and twin packages describe their types with it, and their tests
// check every digest against go-ethereum's generic implementation
// (signer/core/apitypes), which is what wallets and verifiers run.
//
// It is a leaf of the import graph: it imports go-ethereum's common and
// crypto packages and nothing of the project.
package eip712
