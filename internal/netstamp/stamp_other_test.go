//go:build !linux

package netstamp

func holdKernelStamping() error { return nil }
