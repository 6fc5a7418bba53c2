package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Direct gets are answered by any replica from its own copy, which may lag
// an acknowledged write by a few milliseconds on a replicated stream. The
// message-get API below is answered by the stream leader only, so it sees
// every acknowledged write: callers that must read their own writes, or
// whose reads gate security decisions, use it.

// ReadOption tunes a read.
type ReadOption func(*readOptions)

type readOptions struct{ fromLeader bool }

// FromLeader reads from the stream leader instead of the nearest replica:
// slower (a JetStream API request instead of a direct get), never stale.
func FromLeader() ReadOption { return func(o *readOptions) { o.fromLeader = true } }

// lastFromLeader is the leader's last message on the absolute subject of
// the named stream, or ErrNotFound.
func (s *Store) lastFromLeader(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	return s.msgFromLeader(ctx, stream, map[string]any{"last_by_subj": subject})
}

// seqFromLeader is the leader's message at sequence seq, or ErrNotFound.
func (s *Store) seqFromLeader(ctx context.Context, stream string, seq uint64) (*jetstream.RawStreamMsg, error) {
	return s.msgFromLeader(ctx, stream, map[string]any{"seq": seq})
}

func (s *Store) msgFromLeader(ctx context.Context, stream string, request map[string]any) (*jetstream.RawStreamMsg, error) {
	req, err := json.Marshal(request)
	if err != nil {
		return nil, err
	}
	reply, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error *struct {
			Code    int    `json:"code"`
			ErrCode int    `json:"err_code"`
			Desc    string `json:"description"`
		} `json:"error"`
		Message struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("bad message-get response: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.Code == 404 {
			return nil, ErrNotFound
		}
		// As the server's API error, so that classify sees its HTTP code
		// (503 while the stream has no quorum) and its error code.
		return nil, &jetstream.APIError{Code: resp.Error.Code, ErrorCode: jetstream.ErrorCode(resp.Error.ErrCode), Description: resp.Error.Desc}
	}
	hdr, err := parseHeader(resp.Message.Header)
	if err != nil {
		return nil, fmt.Errorf("bad message header: %w", err)
	}
	return &jetstream.RawStreamMsg{
		Subject:  resp.Message.Subject,
		Sequence: resp.Message.Sequence,
		Header:   hdr,
		Data:     resp.Message.Data,
		Time:     resp.Message.Time,
	}, nil
}

// parseHeader reads a NATS header block ("NATS/1.0\r\nKey: value\r\n\r\n").
// NATS header keys are case-sensitive, so they are kept as written.
func parseHeader(raw []byte) (nats.Header, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	lines := strings.Split(string(raw), "\r\n")
	if !strings.HasPrefix(lines[0], "NATS/1.0") {
		return nil, fmt.Errorf("header block starts with %q", lines[0])
	}
	h := nats.Header{}
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("malformed header line %q", line)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h, nil
}
