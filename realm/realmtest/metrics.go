package realmtest

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Metric reads one series of the node at url's /metrics, as a scraper
// would: series is its name with its labels exactly as the text format
// writes them (`zerorealm_xr_path_cells_total{outcome="sent"}`). ok is
// false when the node does not serve it.
func Metric(t testing.TB, url, series string) (value float64, ok bool) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics = %s", url, resp.Status)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		rest, found := strings.CutPrefix(lines.Text(), series+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("series %s: %v", series, err)
		}
		return v, true
	}
	if err := lines.Err(); err != nil {
		t.Fatalf("read %s/metrics: %v", url, err)
	}
	return 0, false
}
