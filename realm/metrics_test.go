package realm

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// TestDecisionsAreCounted checks the decision metric against what a
// person does: a registration and sign-in, a refused read of another's
// audit trail, and a sign-out each count under their action and outcome.
func TestDecisionsAreCounted(t *testing.T) {
	r := startLocalRealm(t)
	// The first avatar becomes the administrator, who reads every
	// decision; ada, the second, reads only her own.
	newClient(t, r).Register(webauthntest.New(), "root")
	c := newClient(t, r)
	sess := c.Register(webauthntest.New(), "ada")
	ada := c.With(sess.Token)
	if code, _ := ada.Call("GET", "/v1/audit?actor=someone-else", nil, nil); code != 403 {
		t.Fatalf("reading another actor's decisions = %d, want 403", code)
	}
	ada.Must("POST", "/v1/sessions/logout", nil, nil)
	want := []string{
		`zerorealm_decisions_total{action="RegisterPasskey",outcome="allow"} 2`,
		`zerorealm_decisions_total{action="ReadAudit",outcome="deny"} 1`,
		`zerorealm_decisions_total{action="SignOut",outcome="allow"} 1`,
	}
	eventually(t, "the decisions to be counted", func() bool {
		text := metricsText(t, r)
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	})
}

// TestDashboardReadsServedMetrics holds the Grafana dashboard in docs to
// the metrics a realm serves: every metric a panel queries is one the
// realm serves, or, for a vector that appears with its first event (a
// refused record), one the code declares, so a renamed metric cannot
// leave a panel empty.
func TestDashboardReadsServedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "grafana", "zerorealm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	r := startLocalRealm(t)
	newClient(t, r).Register(webauthntest.New(), "ada") // a decision on record
	served := metricsText(t, r)
	declared := declaredMetrics(t)
	names := regexp.MustCompile(`zerorealm_[a-z_]+`)
	queried := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, q := range p.Targets {
			for _, name := range names.FindAllString(q.Expr, -1) {
				queried++
				base := strings.TrimSuffix(name, "_bucket")
				if !strings.Contains(served, "# TYPE "+base+" ") && !declared[base] {
					t.Errorf("panel %q queries %s, which the realm does not serve", p.Title, name)
				}
			}
		}
	}
	if queried < 10 {
		t.Fatalf("the dashboard queries %d metrics: the pattern is stale", queried)
	}
}

// declaredMetrics are the metric names the module's code declares
// (Name: "zerorealm_...").
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	decl := regexp.MustCompile(`Name: *"(zerorealm_[a-z_]+)"`)
	out := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
