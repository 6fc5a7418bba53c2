// Package chaos runs a ZeroRealm deployment as real processes, injects
// faults into it while a workload runs, and checks what the workload saw
// and what the realm stored afterwards.
//
// The deployment is what operators run: nats-server processes built from
// the module the project depends on, configured by package natsconf as
// `zerorealm nats config` would, and realm nodes started from the
// zerorealm binary; or one realm node on its embedded store, for faults of
// its disk; and on either, the gateway of the scene's twin, a `zerorealm
// gateway` process enrolled as an operator enrolls one, whose journal
// records the commands it carries out. Faults are SIGKILLs of a NATS server, of a stream's leader and
// of a realm node, the loss of quorum, and a full disk (a small tmpfs,
// where the machine lets the test mount one).
//
// The workload signs avatars in with software passkeys, moves unique items
// and fungible credits between their wallets with signed EIP-712 intents,
// sets the twin's valves with commands under Idempotency-Keys, and records
// every request with its answer and its time. The checker then
// holds the record against the store: per item, the history is
// linearizable (porcupine, with an owner register as the model); every
// receipted transfer is in its item's ledger exactly once; balances are
// conserved and each wallet's is what its receipts say; every node's audit
// chain verifies; and every answer given during a fault was a documented
// one (no 500, no 401 for a live session, no wait past the request
// deadline plus a second); and, against the gateway's journal, no twin command
// was carried out twice, every command answered done was carried out once,
// and none finally refused was carried out.
//
// The package's tests run a short scenario in the normal test run and
// every fault with the chaos build tag (go test -tags chaos ./internal/chaos).
package chaos
