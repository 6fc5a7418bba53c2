package main

import (
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestPasskeyHostProblem(t *testing.T) {
	cases := []struct {
		rpID, origin string
		want         string // in the problem; "" for none
	}{
		{"localhost", "http://localhost:8080", ""},
		{"example.org", "https://realm.example.org", ""},
		{"Example.org", "https://example.ORG", ""},
		{"localhost", "http://127.0.0.1:8080", "Use --listen localhost:8080"},
		{"localhost", "http://[::1]:8080", "Use --listen localhost:8080"},
		{"example.org", "https://192.0.2.1", "a domain name within example.org"},
		{"localhost", "https://realm.example.org", "Run with --rp-id realm.example.org"},
		{"example.org", "https://notexample.org", "neither example.org nor a subdomain"},
		{"localhost", "::not a url", "is not a URL"},
	}
	for _, tc := range cases {
		got := passkeyHostProblem(tc.rpID, tc.origin)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("passkeyHostProblem(%q, %q) = %q, want %q", tc.rpID, tc.origin, got, tc.want)
		}
	}
}

// TestServeWarnsWhenPasskeysCannotWork starts the realm on 127.0.0.1 with
// the default rp-id, as the quick start's reader might: it says at start
// that passkeys cannot work there and what to run instead.
func TestServeWarnsWhenPasskeysCannotWork(t *testing.T) {
	url, _, stderr, stop := startRealmStderr(t, []string{"serve", "--listen", "127.0.0.1:0", "--nats-listen", "", "--data", t.TempDir(), "--log-level", "warn"})
	defer stop()
	port := url[strings.LastIndex(url, ":")+1:]
	out := stderr.String()
	if !strings.Contains(out, "WARNING: passkeys cannot work at "+url) || !strings.Contains(out, "--listen localhost:"+port) {
		t.Fatalf("stderr at start:\n%s\nwant a warning that passkeys cannot work at %s, suggesting --listen localhost:%s", out, url, port)
	}
}

// TestREADMEListsEverySetting checks the README's configuration table
// against the command: every flag of serve with its ZR_ variable, and
// every ZR_ variable the realm's code reads directly.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	var serve *cobra.Command
	for _, c := range newRootCommand().Commands() {
		if c.Name() == "serve" {
			serve = c
		}
	}
	if serve == nil {
		t.Fatal("no serve command")
	}
	var missing []string
	checked := 0
	visit := func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		checked++
		for _, want := range []string{"`--" + f.Name + "`", "`" + envName(f.Name) + "`"} {
			if !strings.Contains(doc, want) {
				missing = append(missing, want)
			}
		}
	}
	serve.LocalFlags().VisitAll(visit)
	serve.InheritedFlags().VisitAll(visit)
	if checked < 20 {
		t.Fatalf("checked %d flags of serve: the walk is stale", checked)
	}
	// Variables read with os.Getenv outside the flags, in the code the
	// binary runs (test helpers are documented in DEVELOPERS.md).
	getenv := regexp.MustCompile(`(?:Getenv|LookupEnv)\("(ZR_[A-Z_]+)"\)`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "../.." || d.Name() == "testdata" || d.Name() == "browsertest") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range getenv.FindAllStringSubmatch(string(src), -1) {
			if !strings.Contains(doc, "`"+m[1]+"`") {
				missing = append(missing, m[1]+" (read in "+path+")")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("README.md's configuration does not name %v", missing)
	}
}

func TestParseAddrs(t *testing.T) {
	got, err := parseAddrs(" 203.0.113.7, ::ffff:198.51.100.1 ,2001:db8::7")
	want := []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::7")}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseAddrs = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"realm.example", "203.0.113.0/24", "203.0.113.7:3478"} {
		if _, err := parseAddrs(bad); err == nil || !strings.Contains(err.Error(), "is not an IP address") {
			t.Errorf("parseAddrs(%q) = %v, want an error naming it", bad, err)
		}
	}
	if got, err := parseAddrs(""); err != nil || len(got) != 0 {
		t.Errorf("parseAddrs(\"\") = %v, %v; want none", got, err)
	}
}
