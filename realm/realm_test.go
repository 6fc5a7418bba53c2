package realm

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/scenesapi"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// The realm's tests share their scaffolding with the packages that start
// realms from outside it (realmtest).
var (
	testLogger       = realmtest.Logger
	get              = realmtest.Get
	eventually       = realmtest.Eventually
	eventuallyWithin = realmtest.EventuallyWithin
)

// startRealm runs a realm until the test ends.
func startRealm(t testing.TB, cfg Config) *Realm {
	t.Helper()
	if _, bench := t.(*testing.B); bench && cfg.CeremonyRate == 0 {
		// A benchmark signs in from one address as fast as it can: it
		// measures the realm, not its limit on one client.
		cfg.CeremonyRate = -1
	}
	r, _ := runRealm(t, cfg)
	return r
}

// shareClusterKeys gives the nodes a test starts on one NATS cluster the
// same key files (realmtest.ShareClusterKeys).
func shareClusterKeys(t testing.TB, cfg *Config) {
	t.Helper()
	realmtest.ShareClusterKeys(t, len(cfg.NATS) > 0, &cfg.TemplateKeyFile, &cfg.RecordKeyFile)
}

// runRealm starts a realm as configured and returns a stop that waits for
// it to end (also run at cleanup), so a test can restart a node on the
// same data directory.
func runRealm(t testing.TB, cfg Config) (*Realm, func()) {
	t.Helper()
	realmtest.Place(t, &cfg.Listen, &cfg.DataDir, &cfg.Logger)
	if cfg.Assets.CustodyScryptN == 0 {
		cfg.Assets.CustodyScryptN = realmtest.CustodyScryptN
	}
	shareClusterKeys(t, &cfg)
	return realmtest.Run(t, func() (*Realm, error) { return New(cfg) })
}

func TestNotReadyAnswers503WithProblem(t *testing.T) {
	r, err := New(Config{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := r.routes()
	for _, path := range []string{"/healthz", "/v1/scenes", "/v1/audit"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("GET %s before start = %d, want 503", path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/scenes", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p edge.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != 503 || p.Detail == "" || p.RequestID == "" {
		t.Fatalf("problem = %+v (%v), want status 503 with detail and request id", p, err)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := map[string]Config{
		"no data dir":          {},
		"bad listen":           {DataDir: "x", Listen: "no-port"},
		"bad nats url":         {DataDir: "x", NATS: []string{"localhost"}},
		"bad node":             {DataDir: "x", Node: "has space"},
		"bad prefix":           {DataDir: "x", Prefix: "a.b"},
		"bad custody scrypt N": {DataDir: "x", Assets: AssetsConfig{CustodyScryptN: 3}},
		"negative max XR":      {DataDir: "x", MaxXRStreams: -1},
		"two public IPv4":      {DataDir: "x", WebRTCPublicIPs: []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("203.0.113.8")}},
		"unspecified public":   {DataDir: "x", WebRTCPublicIPs: []netip.Addr{netip.IPv4Unspecified()}},
		"zero public IP":       {DataDir: "x", WebRTCPublicIPs: []netip.Addr{{}}},
	}
	for name, cfg := range cases {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%s) = nil error, want ErrConfig", name)
		}
	}
}

func TestEmbeddedServesScenesAndProblems(t *testing.T) {
	r := startRealm(t, Config{})
	var scenes struct {
		Scenes []scenesapi.Summary `json:"scenes"`
	}
	if code := get(t, r.URL()+"/v1/scenes", &scenes); code != 200 || len(scenes.Scenes) == 0 || scenes.Scenes[0].ID != "foundry" {
		t.Fatalf("GET /v1/scenes = %d %+v, want foundry", code, scenes)
	}
	var foundry scenesapi.Detail
	if code := get(t, r.URL()+"/v1/scenes/foundry", &foundry); code != 200 || len(foundry.Twins) < 3 || len(foundry.Policies) == 0 {
		t.Fatalf("GET /v1/scenes/foundry = %d %+v, want twins and policies", code, foundry)
	}
	var p edge.Problem
	if code := get(t, r.URL()+"/v1/scenes/atlantis", &p); code != 404 || p.Status != 404 || !strings.Contains(p.Detail, "atlantis") {
		t.Fatalf("GET unknown scene = %d %+v, want 404 naming it", code, p)
	}
	if code := get(t, r.URL()+"/v1/audit?limit=10", &p); code != 401 || p.Status != 401 || !strings.Contains(p.Detail, "sign in") {
		t.Fatalf("GET /v1/audit without a session = %d %+v, want 401 asking to sign in", code, p)
	}
	if code := get(t, r.URL()+"/nowhere", &p); code != 404 {
		t.Fatalf("GET /nowhere = %d, want 404", code)
	}
}
