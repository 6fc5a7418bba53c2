package realm

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// rawPost sends body with an optional Idempotency-Key and returns the
// status, the body's bytes and the headers.
func rawPost(t *testing.T, c *apiClient, path string, body any, key string) (int, []byte, http.Header) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.Base+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, resp.Header
}

// TestResubmittedIntentAnswersItsReceipt: a signed intent sent again, with
// its first Idempotency-Key, another key or none, answers 200 with the
// first 201's bytes; the first key sent with another intent is 422 and
// moves nothing.
func TestResubmittedIntentAnswersItsReceipt(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	bob := newMarketUser(t, r, "bob")
	mint(t, r, "relics", "urn", ada.Wallet, 0)
	give := ada.SignedTransfer(t, intent("relics", "urn", 1, ada.Wallet, bob.Wallet, 1, deadlineIn(time.Hour)), ada.Key)
	status, first, _ := rawPost(t, ada.C, "/v1/assets/transfers", give, "urn-1")
	if status != http.StatusCreated {
		t.Fatalf("transfer = %d %s", status, first)
	}
	for _, key := range []string{"urn-1", "", "urn-2"} {
		status, again, hdr := rawPost(t, ada.C, "/v1/assets/transfers", give, key)
		if status != http.StatusOK || !bytes.Equal(again, first) || hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("resubmitted with key %q = %d replayed=%q\n%s\nwant 200 with the first answer\n%s", key, status, hdr.Get("Idempotent-Replayed"), again, first)
		}
	}
	a, _ := r.market.Ledger().Asset("relics", "urn")
	if len(a.History) != 2 {
		t.Fatalf("urn history has %d events after resubmissions, want mint + one transfer", len(a.History))
	}

	// The first key with another intent: 422, and nothing moves.
	mint(t, r, "relics", "jar", ada.Wallet, 0)
	other := ada.SignedTransfer(t, intent("relics", "jar", 1, ada.Wallet, bob.Wallet, 2, deadlineIn(time.Hour)), ada.Key)
	status, body, _ := rawPost(t, ada.C, "/v1/assets/transfers", other, "urn-1")
	var p edge.Problem
	_ = json.Unmarshal(body, &p)
	if status != http.StatusUnprocessableEntity || !strings.HasSuffix(p.Type, "/idempotency-key-reused") {
		t.Fatalf("key reused for another intent = %d %s, want 422 idempotency-key-reused", status, body)
	}
	if jar, _ := r.market.Ledger().Asset("relics", "jar"); len(jar.History) != 1 || jar.Owner != ada.Wallet {
		t.Fatalf("jar after a refused key = %+v, want it unmoved", jar)
	}
	// Another avatar may use the same key for its own request.
	mint(t, r, "relics", "cup", bob.Wallet, 0)
	back := bob.SignedTransfer(t, intent("relics", "cup", 1, bob.Wallet, ada.Wallet, 1, deadlineIn(time.Hour)), bob.Key)
	if status, body, _ := rawPost(t, bob.C, "/v1/assets/transfers", back, "urn-1"); status != http.StatusCreated {
		t.Fatalf("bob's transfer under ada's key name = %d %s, want 201", status, body)
	}
}
