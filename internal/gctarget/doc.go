// Package gctarget moves the Go collector's target (GOGC) between a floor
// and a ceiling so that the collector takes no more than a budgeted share
// of the process's CPU, and the heap no more headroom than that budget
// needs.
//
// A fixed target is a fixed trade. Go's default, 100, lets the heap grow
// to twice what is live: a realm node streaming 2,000 avatars over
// WebSocket held 400 KiB of RSS an avatar, a third of it headroom, while
// its collector took 1-2 % of its CPU. At 20 the same node held 243 KiB
// an avatar for 3 % of its CPU. But a node whose streams come over WebRTC
// keeps a heap full of pointers (each peer connection's transports) and
// allocates for every datagram: at 20 its collector took a fifth of the
// node's CPU, at 100 a twentieth. No one number is right for both, and a
// node does not choose its clients.
//
// A Tuner reads, from runtime/metrics, the CPU the collector took from
// the program since it last looked (its assists, its dedicated workers
// and its pauses; the marking it did on otherwise idle cores cost
// nothing) over the CPU the program used. Over the budget it doubles the
// target, up to the ceiling; under a third of it, it halves it, down to
// the floor; in between it keeps it, so that it settles instead of
// swinging. It waits for two collections between looks (or for 15 s
// without enough of them, which says the collector costs nothing), since
// the runtime brings its CPU estimates up to date only when a collection
// ends.
package gctarget
