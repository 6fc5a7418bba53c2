// Package cpuload measures how much CPU this process uses and how much of
// the machine's is left, as rates over the last few seconds.
//
// A node that admits work by its own queues learns it is short of CPU only
// once every queue is late: by then it holds more work than it can do.
// What it can ask earlier is the operating system: how many cores this
// process used, and how many of the machine's sat idle. Neither can be
// forged by a client, and both move as soon as the machine fills, whether
// the work is the node's own or another process's beside it.
//
// A Meter keeps one Reading a second (Sample) and answers with the rates
// over its window (Rates). The process's CPU time comes from getrusage;
// the machine's idle time from /proc/stat, on Linux only: elsewhere Rates
// says the machine is unknown and only the process's own use is measured.
package cpuload
