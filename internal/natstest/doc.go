// Package natstest starts real, in-process NATS servers with JetStream for
// tests, so that every package that keeps state in JetStream is tested
// against the engine it runs on rather than a stand-in.
//
// It is imported only by _test.go files. Servers listen on loopback with
// ports chosen by the kernel, keep their data under t.TempDir() (or a
// directory the test names, to restart on the same data) and are shut down
// by t.Cleanup.
package natstest
