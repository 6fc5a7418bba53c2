// Package replaywindow remembers the ids of signed messages accepted
// within their freshness window, so that one sent again within it is
// refused: DPoP proofs (agents) and the background exchange's requests
// (realm/internal/peerbackground). A message older than its window is
// refused by its own time check, so its id need not be kept longer.
//
// Two generations of ids, each as old as the window: the older is dropped
// whole when the newer is a window old, so an id is remembered for at
// least a window and at most two, at no cost per id to forget it.
package replaywindow
