package peerbackground

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/internal/replaywindow"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Sentinel errors of a refused request.
var (
	// ErrNotAReader: the request is not signed by a key this realm
	// shares its background with, or its signature does not verify.
	ErrNotAReader = errors.New("peerbackground: not a reader")
	// ErrRequestRefused: a reader's request that is for another realm,
	// stale, or sent before.
	ErrRequestRefused = errors.New("peerbackground: request refused")
)

// maxRequestBytes bounds a request: its four lines and a few signatures.
const maxRequestBytes = 4 << 10

// Readers' pace: one request every 10 s once a burst of 6 is spent. A
// reader fetches once an hour; this only stops one that loops.
const (
	readerRate  = 0.1
	readerBurst = 6
)

// Any client address's pace, before its request is read: the route is
// open to the network (the signature is the authentication), and each
// refusal of a request is an audit record, so a flood of garbage must not
// turn into a flood of records. A realm's nodes behind one address fetch
// once an hour each.
const (
	addressRate  = 1
	addressBurst = 20
)

// maxSeen bounds the nonces kept: at the readers' pace, a window holds at
// most readerBurst + 4·Skew·readerRate of each reader's.
const maxSeen = 1 << 14

// API serves the node's statistics to the realms named as readers.
type API struct {
	edge *edge.Edge
	svc  func() *Service
	// rate paces each reader (by its key), byAddress each client address.
	rate, byAddress *edge.RateLimiter
}

// NewAPI returns the exchange's route; svc is read behind the edge's
// ready check, once the node has made its Service.
func NewAPI(e *edge.Edge, svc func() *Service) *API {
	return &API{edge: e, svc: svc,
		rate:      edge.NewRateLimiter(readerRate, readerBurst, time.Now),
		byAddress: edge.NewRateLimiter(addressRate, addressBurst, time.Now)}
}

// Routes registers POST /v1/biometrics/background (SharePath), written
// out so that the OpenAPI document's test reads it.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/biometrics/background", a.edge.WhenReady(a.handleShare))
}

const (
	auditAction   = "ShareBackground"
	auditResource = "biometrics/background"
)

// handleShare answers a reader's signed request with a signed share.
func (a *API) handleShare(w http.ResponseWriter, req *http.Request) {
	s := a.svc()
	if ok, wait := a.byAddress.Take(edge.RateKey(a.edge.ClientAddr(req))); !ok {
		a.edge.WriteError(w, req, edge.TooMany(wait, "too many background requests from your address; wait and try again"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			a.edge.WriteError(w, req, &edge.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("a background request is a signed note of at most %d bytes", maxRequestBytes)})
			return
		}
		a.edge.WriteError(w, req, edge.BadRequest("the request body could not be read"))
		return
	}
	reader, r, err := s.openRequest(body)
	if err == nil {
		if ok, wait := a.rate.Take(reader); !ok {
			err = edge.TooMany(wait, fmt.Sprintf("reader %s asks more often than once every %s", reader, time.Duration(float64(time.Second)/readerRate)))
		}
	}
	if err == nil {
		err = s.remember(reader, r.Nonce)
	}
	actor := reader
	if actor == "" {
		actor = "unknown"
	}
	if err != nil {
		s.m.requests.WithLabelValues("refused").Inc()
		s.deps.Audit.DenyQueued(req, actor, auditAction, auditResource, err)
		a.edge.WriteError(w, req, err)
		return
	}
	msg, people, err := s.share(req.Context(), reader, r)
	if errors.Is(err, biometrics.ErrTooFewToShare) {
		s.m.requests.WithLabelValues("too-few").Inc()
		err = problem.Conflicting(err, "this node shares nothing now: "+tooFewDetail(err))
		s.deps.Audit.DenyQueued(req, actor, auditAction, auditResource, err)
		a.edge.WriteError(w, req, err)
		return
	}
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	s.m.requests.WithLabelValues("shared").Inc()
	s.deps.Audit.AllowQueued(req, actor, auditAction, auditResource, "signed by a reader's pinned key, for this realm, fresh and not seen before", map[string]any{"people": people})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(msg)
}

// tooFewDetail is ErrTooFewToShare's reason without the package's prefix.
func tooFewDetail(err error) string {
	msg := err.Error()
	if why, ok := strings.CutPrefix(msg, biometrics.ErrTooFewToShare.Error()+": "); ok {
		return why
	}
	return msg
}

// openRequest verifies a request note against the readers' keys and
// reads it; reader is the name of the key that signed it ("" when none
// of the readers' did). Every refusal says why.
func (s *Service) openRequest(msg []byte) (reader string, r Request, err error) {
	n, err := note.Open(msg, s.readers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			names := make([]string, 0, len(unverified.Note.UnverifiedSigs))
			for _, sig := range unverified.Note.UnverifiedSigs {
				names = append(names, clip(sig.Name))
			}
			return "", Request{}, problem.Refused(ErrNotAReader, fmt.Sprintf("the request is signed by %q, none of them a key this realm shares its background with", names))
		case errors.As(err, &invalid):
			return "", Request{}, problem.Refused(ErrNotAReader, fmt.Sprintf("the signature of %q does not verify", clip(invalid.Name)))
		default:
			return "", Request{}, edge.BadRequest("a background request is a C2SP signed note: " + err.Error())
		}
	}
	reader = n.Sigs[0].Name
	r, err = ParseRequest(n.Text)
	if err != nil {
		return reader, Request{}, edge.BadRequest(err.Error())
	}
	if r.Realm != s.deps.Realm {
		return reader, Request{}, problem.Refused(ErrRequestRefused, fmt.Sprintf("the request is for realm %q; this is %q", r.Realm, s.deps.Realm))
	}
	now := s.deps.Clock.Now()
	if d := r.Time.Sub(now); d > Skew || d < -Skew {
		return reader, Request{}, problem.Refused(ErrRequestRefused, fmt.Sprintf("the request is dated %s, %s from this node's clock: more than %s", r.Time.Format(time.RFC3339), d.Round(time.Second), Skew))
	}
	return reader, r, nil
}

// remember notes a request's nonce, and refuses one seen within the
// freshness window.
func (s *Service) remember(reader string, nonce []byte) error {
	sum := sha256.Sum256(append([]byte(reader+" "), nonce...))
	var id replaywindow.ID
	copy(id[:], sum[:])
	switch s.seen.Add(id, s.deps.Clock.Now()) {
	case replaywindow.Repeated:
		return problem.Refused(ErrRequestRefused, "this request was answered before: every request carries a nonce of its own")
	case replaywindow.Full:
		return edge.TooMany(Skew, "this node holds as many recent requests as it keeps; ask again later")
	}
	return nil
}

// share signs this node's statistics for reader, in answer to r, if the
// realm may share its people now (shareAgain).
func (s *Service) share(ctx context.Context, reader string, r Request) ([]byte, int, error) {
	stats, ids, err := s.deps.Engine.SharePopulation(s.cfg.MinPeople)
	if err != nil {
		return nil, 0, err
	}
	if err := s.shareAgain(ctx, membersOf(ids)); err != nil {
		return nil, 0, err
	}
	text, err := Share{Realm: s.deps.Realm, Reader: reader, Time: s.deps.Clock.Now().UTC().Truncate(time.Second), Nonce: r.Nonce, Statistics: stats}.Text()
	if err != nil {
		return nil, 0, err
	}
	msg, err := note.Sign(&note.Note{Text: text}, s.signers...)
	if err != nil {
		return nil, 0, err
	}
	return msg, stats.People, nil
}
