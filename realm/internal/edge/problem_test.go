package edge

import (
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/problem"
)

// TestDomainProblemsKeepRetryAfter: a domain's problem is answered with
// its status, type, detail and Retry-After, as the domain wrote them.
func TestDomainProblemsKeepRetryAfter(t *testing.T) {
	a := problemFor(&problem.Error{Status: http.StatusConflict, Type: problem.Conflict, Detail: "busy", RetryAfter: 2 * time.Second})
	if a.status != http.StatusConflict || a.kind != string(problem.Conflict) || a.detail != "busy" || a.retryAfter != 2*time.Second {
		t.Fatalf("answer %+v, want 409 conflict \"busy\" with Retry-After 2s", a)
	}
}
