// Package xrarchery reads the xr-archery recordings (headset and both
// controllers of people shooting a virtual bow, two sessions on different
// days; Liebers et al., CHI 2021) into biometrics frames, for evaluating the
// verifier on real motion. The recordings are not part of the repository:
// they are read from a directory given at run time.
package xrarchery
