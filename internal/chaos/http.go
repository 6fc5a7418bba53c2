package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/zerorealm/zerorealm/clients/market"
)

// post sends body as JSON to path on c's realm and decodes the answer
// into out; an error answer comes back as a *market.Problem, as the
// market client's own calls return it.
func post(ctx context.Context, c *market.Client, path string, body, out any) error {
	return call(ctx, c, http.MethodPost, path, body, out)
}

// get reads path on c's realm into out.
func get(ctx context.Context, c *market.Client, path string, out any) error {
	return call(ctx, c, http.MethodGet, path, nil, out)
}

func call(ctx context.Context, c *market.Client, method, path string, body, out any) error {
	return callWith(ctx, c, method, path, nil, body, out)
}

// postKeyed is post with an Idempotency-Key.
func postKeyed(ctx context.Context, c *market.Client, path, key string, body, out any) error {
	return callWith(ctx, c, http.MethodPost, path, http.Header{"Idempotency-Key": {key}}, body, out)
}

func callWith(ctx context.Context, c *market.Client, method, path string, header http.Header, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		p := &market.Problem{Status: resp.StatusCode}
		if json.Unmarshal(data, p) != nil {
			p.Detail = strings.TrimSpace(string(data))
		}
		return p
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("chaos: decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// asProblem reports whether err is a problem answer, and sets *p to it.
func asProblem(err error, p **market.Problem) bool {
	return errors.As(err, p)
}
