// Package storetest opens a store on a throwaway single-node NATS server
// with JetStream, the start of most tests of a package that keeps state:
// one helper instead of a copy in each package's tests. Only tests import
// it; internal/archtest holds that.
package storetest
