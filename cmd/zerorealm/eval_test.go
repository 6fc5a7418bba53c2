package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestEvalBiometricsSynthetic(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "out.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"eval", "biometrics", "--people", "5", "--swaps", "2", "--replays", "2",
		"--hours", "0.05", "--crowd", "20", "--crowd-minutes", "1.5", "--json", jsonPath, "--plot", dir}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("eval biometrics exit %d, stderr %q", code, stderr.String())
	}
	// Not a terminal: no progress bar on stderr.
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want empty when not a terminal", stderr.String())
	}
	summary := regexp.MustCompile(`(?m)^eer_4s=[0-9.]+ eer_10s=[0-9.]+ eer_session=[0-9.]+ rank1_10s=[0-9.]+ swap_detect_p95_s=([0-9.]+|inf) replay_reject=[0-9.]+$`)
	if !summary.MatchString(stdout.String()) {
		t.Errorf("stdout has no summary line:\n%s", stdout.String())
	}
	var rep struct {
		Source string `json:"source"`
		Spans  []struct {
			Name    string `json:"name"`
			Genuine int    `json:"genuine_trials"`
		} `json:"spans"`
		Groups []struct {
			People []string `json:"people"`
			Spans  []struct {
				EER float64 `json:"eer"`
			} `json:"spans"`
		} `json:"groups"`
		Variants []struct {
			Name   string `json:"name"`
			Spans  []any  `json:"spans"`
			Groups []any  `json:"groups"`
		} `json:"variants"`
		Summary     map[string]any `json:"summary"`
		ThinnedSwap struct {
			Trials int `json:"trials"`
		} `json:"swap_thinning"`
		Crowd struct {
			People  int     `json:"people"`
			Minutes float64 `json:"minutes"`
		} `json:"crowd"`
	}
	readJSON(t, jsonPath, &rep)
	if rep.Source != "synthetic" || len(rep.Spans) != 3 || rep.Spans[2].Genuine != 5 || len(rep.Summary) != 6 {
		t.Errorf("--json = %+v, want synthetic, 3 spans, 5 genuine session trials, 6 summary figures", rep)
	}
	if rep.ThinnedSwap.Trials != 2 || !strings.Contains(stdout.String(), "change of wearer, node thinning (synthetic): detected within 10 s in ") {
		t.Errorf("changes of wearer on a thinning node = %+v, want 2 trials, printed", rep.ThinnedSwap)
	}
	if rep.Crowd.People != 20 || rep.Crowd.Minutes != 1.5 || !strings.Contains(stdout.String(), "crowd (synthetic): 20 people streaming together for 1.5 min") {
		t.Errorf("crowd = %+v, want 20 people for a minute and a half, printed", rep.Crowd)
	}
	// The development split: 5 people make groups of 3 and 2.
	if len(rep.Groups) != 2 || len(rep.Groups[0].People) != 3 || len(rep.Groups[1].People) != 2 || len(rep.Groups[0].Spans) != 3 {
		t.Errorf("--json groups = %+v, want 3 people then 2, each with 3 spans", rep.Groups)
	}
	// Both ways: with the synthetic prior in every background, and with
	// the within-person scatter from both days.
	if len(rep.Variants) != 2 || len(rep.Variants[0].Spans) != 3 || len(rep.Variants[1].Groups) != 2 ||
		strings.Count(stdout.String(), "\nvariant: ") != 2 {
		t.Errorf("--json variants = %+v, want 2 with 3 spans and 2 groups each, printed", rep.Variants)
	}
	for _, name := range []string{"det.png", "scores.png"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s: %v, want a PNG", name, err)
		}
	}
}

func TestEvalBiometricsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"eval", "biometrics", "--people", "2"},
		{"eval", "biometrics", "--prior-aside", "0"},
		{"eval", "biometrics", "--prior-aside=-2"},
		{"eval", "biometrics", "--crowd-nodes", "0"},
		{"eval", "biometrics", "--crowd-minutes", "0"},
		{"eval", "biometrics", "--crowd-minutes=-1"},
		{"eval", "biometrics", "--crowd-minutes", "NaN"},
		{"eval", "biometrics", "--crowd-minutes", "1441"},
		{"eval", "biometrics", "--data", filepath.Join(t.TempDir(), "missing")},
		{"eval", "biometrics", "--background-people", "1"},
		{"eval", "biometrics", "--background-people", "4", "--background-draws", "0"},
		{"eval", "biometrics", "--people", "5", "--background-people", "4"}, // 5 people leave 3 others
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", args, code, exitUsage, stderr.String())
		}
	}
}

// TestEvalBiometricsRealSecondDays: with the real recordings, the eval
// streams each person's second day as a realm of them would, with its
// synthetic prior and with the prior aside, and reports how often each
// fell under the step-up line, printed and in --json.
func TestEvalBiometricsRealSecondDays(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	data := filepath.Join("..", "..", "..", "shared", "datasets", "xr-archery")
	if _, err := os.Stat(data); err != nil {
		t.Skipf("real recordings absent (%v)", err)
	}
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"eval", "biometrics", "--data", data, "--swaps", "1", "--replays", "1",
		"--hours", "0.01", "--crowd", "0", "--json", jsonPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("eval biometrics --data exit %d, stderr %q", code, stderr.String())
	}
	var rep struct {
		RealStepUps []struct {
			Name      string  `json:"name"`
			Windows   int     `json:"windows"`
			StepUps   int     `json:"step_ups"`
			PerHour   float64 `json:"per_hour"`
			PerPerson []int   `json:"per_person"`
		} `json:"real_step_ups"`
	}
	readJSON(t, jsonPath, &rep)
	if len(rep.RealStepUps) != 2 {
		t.Fatalf("real_step_ups = %+v, want the realm's way and the prior aside", rep.RealStepUps)
	}
	for _, su := range rep.RealStepUps {
		sum := 0
		for _, n := range su.PerPerson {
			sum += n
		}
		// The ten second days hold about 8 minutes of scored motion.
		if len(su.PerPerson) != 10 || sum != su.StepUps || su.Windows < 400 || math.Abs(su.PerHour-float64(su.StepUps)*3600/float64(su.Windows)) > 1e-9 {
			t.Errorf("%s: %+v, want 10 people whose step-ups add up, about 480 windows, and the hourly rate of them", su.Name, su)
		}
		if !strings.Contains(stdout.String(), "real people on their second day, "+su.Name+": ") {
			t.Errorf("stdout does not print %q:\n%s", su.Name, stdout.String())
		}
	}
}

// TestEvalBiometricsDrawnBackgrounds: --background-people fits every
// comparison's background from that many of the other people, for the
// realm's way and each variant, and prints and writes the means over
// --background-draws draws; fewer people than the realm's usual
// background give different figures.
func TestEvalBiometricsDrawnBackgrounds(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"eval", "biometrics", "--people", "6", "--swaps", "1", "--replays", "1",
		"--hours", "0.01", "--crowd", "0", "--background-people", "2", "--background-draws", "3", "--json", jsonPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("eval biometrics exit %d, stderr %q", code, stderr.String())
	}
	var rep struct {
		Spans []struct {
			EER float64 `json:"eer"`
		} `json:"spans"`
		Drawn []struct {
			Name          string `json:"name"`
			People, Draws int
			Spans         []struct {
				Name       string
				EER, Rank1 float64
			}
			Groups []struct {
				Name  string
				Spans []struct{ EER float64 }
			}
		} `json:"background_draws"`
	}
	readJSON(t, jsonPath, &rep)
	if len(rep.Drawn) != 3 {
		t.Fatalf("background_draws = %+v, want the realm's way and its two variants", rep.Drawn)
	}
	for _, d := range rep.Drawn {
		if d.People != 2 || d.Draws != 3 || len(d.Spans) != 3 || len(d.Groups) != 2 || d.Spans[1].Name != "10s" {
			t.Errorf("%s: %+v, want 2 people, 3 draws, 3 spans and 2 groups", d.Name, d)
		}
		if !strings.Contains(stdout.String(), "backgrounds of 2 people (means of 3 draws), "+d.Name+":") {
			t.Errorf("stdout does not print %q:\n%s", d.Name, stdout.String())
		}
	}
	if rep.Drawn[0].Spans[0].EER == rep.Spans[0].EER {
		t.Errorf("4 s EER %v with backgrounds of two people, the same as with all four others", rep.Spans[0].EER)
	}
}

// readJSON decodes the JSON file at path into v.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
