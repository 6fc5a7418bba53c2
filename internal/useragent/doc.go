// Package useragent reads the browser and operating system out of an HTTP
// User-Agent header, so that a list of sessions can say "Chrome 131 on
// macOS" instead of the header itself.
//
// It knows the browsers and systems people sign in with (including the
// headsets' browsers) and the realm's own clients, and answers "" for
// what it does not recognize: the header is the client's claim, shown to
// help a person tell their sessions apart, never used to decide anything.
// It is a small table of product tokens read in order, not a full
// User-Agent database.
package useragent
