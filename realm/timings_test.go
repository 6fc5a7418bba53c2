package realm

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
)

// observations is how many times the histogram series of /metrics whose
// labels include every one of labels was observed (its _count).
func observations(text, histogram string, labels ...string) int {
	count := regexp.MustCompile(`^` + regexp.QuoteMeta(histogram) + `_count(\{[^}]*\})? (\d+)$`)
	total := 0
	for _, line := range strings.Split(text, "\n") {
		m := count.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		matched := true
		for _, l := range labels {
			matched = matched && strings.Contains(m[1], l)
		}
		if n, err := strconv.Atoi(m[2]); err == nil && matched {
			total += n
		}
	}
	return total
}

// TestDomainEventsAreTimed: real ceremonies, policy decisions, a twin
// command and a custodial transfer each land in their histogram, under
// the labels that tell them apart. (XR window scoring is checked where a
// real stream is scored: TestXRDataChannelTrustFollowsTheWearer.)
func TestDomainEventsAreTimed(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator", "admin") // a registration
	anon := newClient(t, r)
	finish := anon.BeginLogin(ada.Auth, "ada")
	anon.Must("POST", "/v1/webauthn/login/finish", finish, nil) // a sign-in
	if code, _ := anon.Call("POST", "/v1/webauthn/login/finish", finish, nil); code < 400 {
		t.Fatalf("the same assertion again = %d, want refused", code) // a refused one
	}
	if code, p := ada.StepUp(ada.Auth, digestA); code != http.StatusOK {
		t.Fatalf("step-up = %d %+v", code, p)
	}

	// A twin command: decided by the foundry's policy, carried out by the
	// simulated gateway.
	standIn(t, r, ada, "conveyor-line")
	status, p, ans, _ := ada.Command("/v1/twins/conveyor-1/actuators/belt-speed/commands", "timed-1", map[string]any{"op": "set", "value": 0.5, "reason": "timed"})
	if status != http.StatusOK || ans.Status != command.StatusDone {
		t.Fatalf("belt command = %d %+v %+v, want done", status, p, ans)
	}

	// A custodial transfer: refused without its step-up, then a receipt,
	// then the same intent again.
	var wallet struct {
		Custodial struct {
			Address string `json:"address"`
		} `json:"custodial"`
	}
	ada.Must("POST", "/v1/assets/wallet/custodial", nil, &wallet)
	custodial := common.HexToAddress(wallet.Custodial.Address)
	ada.Must("POST", "/v1/assets/mint", map[string]any{"collection": "credits", "to": custodial.Hex(), "amount": "500"}, nil)
	in := map[string]any{"intent": intent("credits", "", 100, custodial, common.HexToAddress("0x00000000000000000000000000000000000dEAD0"), 1, deadlineIn(time.Hour))}
	var pay payloadAnswer
	ada.Must("POST", "/v1/assets/intents/transfer", in, &pay)
	if code, _ := ada.Call("POST", "/v1/assets/transfers", in, nil); code != http.StatusForbidden {
		t.Fatalf("custodial transfer without its step-up = %d, want 403", code)
	}
	if code, p := ada.StepUp(ada.Auth, pay.Digest); code != http.StatusOK {
		t.Fatalf("step-up for the transfer = %d %+v", code, p)
	}
	ada.Must("POST", "/v1/assets/transfers", in, nil)
	ada.Must("POST", "/v1/assets/transfers", in, nil)

	text := metricsText(t, r)
	// Ada stands in the foundry, connected to this node.
	if !strings.Contains(text, "\nzerorealm_scene_members{scene=\"foundry\"} 1\n") {
		t.Errorf("scene members: want foundry 1:\n%s", grepLines(text, "zerorealm_scene_members"))
	}
	for _, c := range []struct {
		histogram string
		labels    []string
		atLeast   int
	}{
		{"zerorealm_ceremony_finish_duration_seconds", []string{`ceremony="registration"`, `outcome="ok"`}, 1},
		{"zerorealm_ceremony_finish_duration_seconds", []string{`ceremony="sign-in"`, `outcome="ok"`}, 1},
		{"zerorealm_ceremony_finish_duration_seconds", []string{`ceremony="sign-in"`, `outcome="refused"`}, 1},
		{"zerorealm_ceremony_finish_duration_seconds", []string{`ceremony="step-up"`, `outcome="ok"`}, 2},
		{"zerorealm_policy_decision_duration_seconds", []string{`action="JoinScene"`, `effect="allow"`}, 1},
		{"zerorealm_policy_decision_duration_seconds", []string{`action="CommandActuator"`, `effect="allow"`}, 1},
		{"zerorealm_policy_decision_duration_seconds", []string{`action="TransferAsset"`, `effect="allow"`}, 1},
		{"zerorealm_twin_command_duration_seconds", []string{`outcome="done"`}, 1},
		{"zerorealm_transfer_duration_seconds", []string{`kind="transfer"`, `outcome="refused"`}, 1},
		{"zerorealm_transfer_duration_seconds", []string{`kind="transfer"`, `outcome="receipt"`}, 1},
		{"zerorealm_transfer_duration_seconds", []string{`kind="transfer"`, `outcome="replayed"`}, 1},
	} {
		if n := observations(text, c.histogram, c.labels...); n < c.atLeast {
			t.Errorf("%s%v observed %d times, want at least %d:\n%s", c.histogram, c.labels, n, c.atLeast, grepLines(text, c.histogram+"_count"))
		}
	}
}
