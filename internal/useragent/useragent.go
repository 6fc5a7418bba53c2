package useragent

import "strings"

// Client is what a User-Agent says about the software behind a session.
// Each field is "" when the header does not say it in a way this package
// recognizes.
type Client struct {
	Browser string // a name, with the major version when given: "Chrome 131"
	OS      string // "macOS", "Windows", "Android 14", "iOS 17", "Meta Quest"
}

// maxLen bounds the work on one header; the realm keeps 256 bytes of it.
const maxLen = 512

// browsers are read in order: many browsers also name the ones they derive
// from (Edge says Chrome and Safari, Chrome says Safari), so the most
// specific token comes first.
var browsers = []struct{ token, name string }{
	{"OculusBrowser/", "Meta Quest Browser"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"EdgA/", "Edge"},
	{"EdgiOS/", "Edge"},
	{"Edg/", "Edge"},
	{"OPR/", "Opera"},
	{"Vivaldi/", "Vivaldi"},
	{"FxiOS/", "Firefox"},
	{"Firefox/", "Firefox"},
	{"CriOS/", "Chrome"},
	{"HeadlessChrome/", "Headless Chrome"},
	{"Chromium/", "Chromium"},
	{"Chrome/", "Chrome"},
	{"Version/", "Safari"}, // Safari's own version; its "Safari/" token is the WebKit build
	{"zerorealm-sdk-js/", "ZeroRealm JS SDK"},
	{"zerorealm/", "ZeroRealm CLI"},
	{"Go-http-client/", "Go HTTP client"},
	{"node", "Node.js"},
	{"curl/", "curl"},
}

// Parse reads a User-Agent header.
func Parse(ua string) Client {
	if len(ua) > maxLen {
		ua = ua[:maxLen]
	}
	return Client{Browser: browser(ua), OS: system(ua)}
}

// String is "Browser on OS", or whichever of the two is known, or "".
func (c Client) String() string {
	switch {
	case c.Browser != "" && c.OS != "":
		return c.Browser + " on " + c.OS
	case c.Browser != "":
		return c.Browser
	default:
		return c.OS
	}
}

func browser(ua string) string {
	for _, b := range browsers {
		i := strings.Index(ua, b.token)
		if i < 0 {
			continue
		}
		if b.token == "Version/" && !strings.Contains(ua, "Safari/") {
			continue
		}
		if b.token == "node" && i != 0 {
			// Node's fetch sends exactly "node"; elsewhere the word is
			// part of something else.
			continue
		}
		if v := major(ua[i+len(b.token):]); v != "" {
			return b.name + " " + v
		}
		return b.name
	}
	return ""
}

func system(ua string) string {
	switch {
	case strings.Contains(ua, "Quest"):
		return "Meta Quest"
	case strings.Contains(ua, "Android"):
		return versioned("Android", after(ua, "Android "))
	case strings.Contains(ua, "iPad"):
		return versioned("iPadOS", after(ua, "CPU OS "))
	case strings.Contains(ua, "iPhone"):
		return versioned("iOS", after(ua, "iPhone OS "))
	case strings.Contains(ua, "Windows"):
		return "Windows"
	case strings.Contains(ua, "Mac OS X"), strings.Contains(ua, "Macintosh"):
		return "macOS"
	case strings.Contains(ua, "CrOS"):
		return "ChromeOS"
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		return "Linux"
	}
	return ""
}

// after is what follows the first sep in s, or "".
func after(s, sep string) string {
	if i := strings.Index(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return ""
}

func versioned(name, rest string) string {
	if v := major(rest); v != "" {
		return name + " " + v
	}
	return name
}

// major is the leading decimal number of s (at most 4 digits, so a
// garbled header cannot make a long name), or "".
func major(s string) string {
	n := 0
	for n < len(s) && n < 4 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 || (n < len(s) && s[n] >= '0' && s[n] <= '9') {
		return ""
	}
	return s[:n]
}
