package realmtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
)

// Command posts a command with an Idempotency-Key and returns the status,
// the problem (on failure), the answer and the response headers.
func (c *Client) Command(path, key string, body any) (int, edge.Problem, command.Answer, http.Header) {
	c.T.Helper()
	data, asIs := body.([]byte) // sent as it is, for bodies json.Marshal cannot write
	if !asIs {
		data, _ = json.Marshal(body)
	}
	req, err := http.NewRequest("POST", c.Base+path, bytes.NewReader(data))
	if err != nil {
		c.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p edge.Problem
	var a command.Answer
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &p); err != nil {
			c.T.Fatalf("POST %s = %d, not problem+json: %s", path, resp.StatusCode, raw)
		}
	} else if err := json.Unmarshal(raw, &a); err != nil {
		c.T.Fatalf("POST %s: decode %s: %v", path, raw, err)
	}
	return resp.StatusCode, p, a, resp.Header
}

// The foundry's actuators the tests command: the conveyor's belt (low
// risk), the press's ram and its pressure (critical).
const (
	BeltPath     = "/v1/twins/conveyor-1/actuators/belt-speed/commands"
	RamPath      = "/v1/twins/press-1/actuators/ram/commands"
	PressurePath = "/v1/twins/press-1/actuators/pressure/commands"
)
