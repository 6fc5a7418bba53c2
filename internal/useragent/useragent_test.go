package useragent

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	for _, c := range []struct{ ua, browser, os string }{
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome 131", "macOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86", "Edge 131", "Windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox 133", "Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari 18", "macOS"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "Safari 17", "iOS 17"},
		{"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", "Chrome 120", "iPadOS 16"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", "Chrome 131", "Android 14"},
		{"Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "Samsung Internet 23", "Android 13"},
		{"Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) OculusBrowser/34.0.0.0 SamsungBrowser/4.0 Chrome/126.0.6478.122 VR Safari/537.36", "Meta Quest Browser 34", "Meta Quest"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Headless Chrome 131", "Linux"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome 131", "ChromeOS"},
		{"Go-http-client/1.1", "Go HTTP client 1", ""},
		{"node", "Node.js", ""},
		{"curl/8.5.0", "curl 8", ""},
		{"", "", ""},
		{"something else entirely", "", ""},
		{"Chrome/99999999999", "Chrome", ""},
	} {
		got := Parse(c.ua)
		if got.Browser != c.browser || got.OS != c.os {
			t.Errorf("Parse(%.60q) = %+v; want browser %q, os %q", c.ua, got, c.browser, c.os)
		}
	}
}

func TestString(t *testing.T) {
	for c, want := range map[Client]string{
		{Browser: "Chrome 131", OS: "macOS"}: "Chrome 131 on macOS",
		{Browser: "curl 8"}:                  "curl 8",
		{OS: "Linux"}:                        "Linux",
		{}:                                   "",
	} {
		if got := c.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", c, got, want)
		}
	}
}

// FuzzParse: any header gives short, printable names taken from the
// table, and never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "node", "Chrome/", "Chrome/131", "Android ", "iPhone OS 17_4", "Version/1 Safari/2", strings.Repeat("Edg/9", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		c := Parse(ua)
		for _, s := range []string{c.Browser, c.OS} {
			if len(s) > 40 || !utf8.ValidString(s) {
				t.Fatalf("Parse(%q) = %+v: a name too long or not text", ua, c)
			}
			for _, r := range s {
				if r < ' ' {
					t.Fatalf("Parse(%q) = %+v: a control character", ua, c)
				}
			}
		}
	})
}
