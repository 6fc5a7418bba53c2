// Package buildinfo reports which build of ZeroRealm is running, from the
// version stamped at link time or, failing that, from the module and VCS
// information the Go toolchain records in every binary.
package buildinfo
