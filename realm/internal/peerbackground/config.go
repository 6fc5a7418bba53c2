package peerbackground

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zerorealm/zerorealm/biometrics"
)

// Config says which realms this node exchanges background statistics
// with. The zero Config exchanges nothing: no peer is fetched and every
// request is refused ("this realm shares its background with no realm").
type Config struct {
	// Peers are the realms whose statistics this node fetches and
	// whitens with.
	Peers []Peer
	// Readers are the verifier keys (note verifier keys, as `zerorealm
	// keys export-public` prints them) of other realms, or of their
	// nodes, that may read this realm's statistics.
	Readers []string
	// MinPeople is k: a node shares nothing while it knows fewer people.
	// 0 is the default, biometrics.DefaultShareMinPeople, which is also
	// the least allowed.
	MinPeople int
	// Every is how often each peer is fetched (default 1 h, at least a
	// minute). Each share of a changing population tells a little about
	// who changed (docs/biometrics.md), so realms share rarely.
	Every time.Duration
	// MaxAge is how long a peer's statistics are used without a fetch
	// that renews them (default 24 h, at least Every): a peer that stops
	// answering, or stops naming this realm a reader, stops counting.
	MaxAge time.Duration
}

// Peer is a realm this node fetches statistics from.
type Peer struct {
	// URL is the peer realm's base URL (scheme and host, as its clients
	// reach it); the node POSTs to URL + SharePath.
	URL string
	// Keys are the verifier keys of the peer realm's background key or of
	// its nodes': a share signed by none of them is refused. All name one
	// realm.
	Keys []string
}

// SharePath is the route a realm serves its statistics on.
const SharePath = "/v1/biometrics/background"

// Defaults and bounds of Config.
const (
	DefaultEvery  = time.Hour
	DefaultMaxAge = 24 * time.Hour
	minEvery      = time.Minute
)

func (c Config) withDefaults() Config {
	if c.MinPeople == 0 {
		c.MinPeople = biometrics.DefaultShareMinPeople
	}
	if c.Every == 0 {
		c.Every = DefaultEvery
	}
	if c.MaxAge == 0 {
		c.MaxAge = max(DefaultMaxAge, c.Every)
	}
	return c
}

// Problems says what is wrong with a Config, for the realm's
// configuration check.
func Problems(c Config) []string {
	var problems []string
	if c.MinPeople != 0 && c.MinPeople < biometrics.DefaultShareMinPeople {
		problems = append(problems, fmt.Sprintf("background min people %d: want 0 (the default) or at least %d", c.MinPeople, biometrics.DefaultShareMinPeople))
	}
	if c.Every != 0 && c.Every < minEvery {
		problems = append(problems, fmt.Sprintf("background fetch interval %s: want 0 (the default, %s) or at least %s", c.Every, DefaultEvery, minEvery))
	}
	d := c.withDefaults()
	if c.MaxAge != 0 && c.MaxAge < d.Every {
		problems = append(problems, fmt.Sprintf("background max age %s: want 0 (the default) or at least the fetch interval, %s", c.MaxAge, d.Every))
	}
	for _, k := range c.Readers {
		if _, err := verifierOf(k); err != nil {
			problems = append(problems, fmt.Sprintf("background reader: %v", err))
		}
	}
	realms := map[string]bool{}
	for _, p := range c.Peers {
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			problems = append(problems, fmt.Sprintf("background peer %q: want scheme://host[:port], e.g. https://realm.example", p.URL))
			continue
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			problems = append(problems, fmt.Sprintf("background peer %s: http:// shows the shares to anyone on the path; want https:// (http:// only to a loopback host)", p.URL))
			continue
		}
		realm, err := realmOfKeys(p.Keys)
		if err != nil {
			problems = append(problems, fmt.Sprintf("background peer %s: %v", p.URL, err))
			continue
		}
		if realms[realm] {
			problems = append(problems, fmt.Sprintf("background peer %s: realm %q is named by another peer too", p.URL, realm))
		}
		realms[realm] = true
	}
	return problems
}

// loopbackHost says whether host never leaves this machine: the one place
// a share may travel unencrypted (tests, and a TLS proxy beside the node).
func loopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// verifierOf reads a pinned background verifier key.
func verifierOf(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%q is not a note verifier key (zerorealm keys export-public prints them): %v", clip(vkey), err)
	}
	if realmOfKey(v.Name()) == "" {
		return nil, fmt.Errorf("%q is not a background key: its name should be <realm>%s (the realm's) or <realm>%s<node> (a node's)", clip(vkey), strings.TrimSuffix(KeySuffix, "/"), KeySuffix)
	}
	return v, nil
}

// realmOfKeys is the one realm a peer's keys name.
func realmOfKeys(keys []string) (string, error) {
	if len(keys) == 0 {
		return "", fmt.Errorf("no keys: a peer's shares are refused unless signed by a key pinned here")
	}
	realm := ""
	for _, k := range keys {
		v, err := verifierOf(k)
		if err != nil {
			return "", err
		}
		r := realmOfKey(v.Name())
		if realm != "" && r != realm {
			return "", fmt.Errorf("keys name realms %q and %q: one peer is one realm", realm, r)
		}
		realm = r
	}
	return realm, nil
}
