package realm

import (
	"net/http"
	"testing"

	"github.com/zerorealm/zerorealm/internal/aaguid"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// userAgent sets one User-Agent on every request, as a browser does.
type userAgent struct {
	ua   string
	next http.RoundTripper
}

func (u userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", u.ua)
	return u.next.RoundTrip(req)
}

// TestPasskeysAndSessionsAreNamedForPeople: the account's passkeys carry
// their authenticator's name from the AAGUID (none for one the list does
// not know), and its sessions the browser and system of their user agent.
func TestPasskeysAndSessionsAreNamedForPeople(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	const mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	c.HTTP = &http.Client{Timeout: c.HTTP.Timeout, Transport: userAgent{mac, http.DefaultTransport}}

	google := webauthntest.New()
	id, err := aaguid.Parse("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")
	if err != nil {
		t.Fatal(err)
	}
	google.AAGUID = id
	me := c.With(c.Register(google, "ada").Token)
	me.AddPasskey(google, webauthntest.New()) // the test authenticator's own AAGUID: in no list

	var mine struct {
		Avatar struct {
			Passkeys []struct {
				AAGUID        string `json:"aaguid"`
				Authenticator string `json:"authenticator"`
			} `json:"passkeys"`
		} `json:"avatar"`
	}
	me.Must("GET", "/v1/avatars/me", nil, &mine)
	if len(mine.Avatar.Passkeys) != 2 {
		t.Fatalf("passkeys = %+v, want two", mine.Avatar.Passkeys)
	}
	if p := mine.Avatar.Passkeys[0]; p.Authenticator != "Google Password Manager" || p.AAGUID != "ea9b8d664d011d213ce4b6b48cb575d4" {
		t.Errorf("first passkey = %+v, want Google Password Manager", p)
	}
	if p := mine.Avatar.Passkeys[1]; p.Authenticator != "" || len(p.AAGUID) != 32 {
		t.Errorf("second passkey = %+v, want no name and its AAGUID", p)
	}

	var list struct {
		Sessions []struct {
			Current bool   `json:"current"`
			Browser string `json:"browser"`
			OS      string `json:"os"`
		} `json:"sessions"`
	}
	me.Must("GET", "/v1/sessions", nil, &list)
	if len(list.Sessions) != 1 || !list.Sessions[0].Current || list.Sessions[0].Browser != "Chrome 131" || list.Sessions[0].OS != "macOS" {
		t.Fatalf("sessions = %+v, want the current one, Chrome 131 on macOS", list.Sessions)
	}
}
