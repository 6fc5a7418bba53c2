// Command zerorealm is the one ZeroRealm binary. With no subcommand it runs
// `serve`: a realm node on an embedded NATS server with the scenes shipped in
// the binary, so that `go run ./cmd/zerorealm` is a working realm.
//
// Every flag can also come from the environment (ZR_<FLAG>, upper case,
// dashes as underscores) or from a YAML file given with --config; a flag on
// the command line wins over the environment, which wins over the file.
// Mistakes in any of them exit with status 2 and one line saying what is
// wrong and how to fix it.
package main
