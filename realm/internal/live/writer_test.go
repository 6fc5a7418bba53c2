package live

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/cork"
	"github.com/zerorealm/zerorealm/internal/cpuload"
)

// countedConn counts the writes that reach the TCP connection: the
// system calls the writer's batching saves.
type countedConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countedConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

type countedListener struct {
	net.Listener
	accepted chan *countedConn
}

func (l *countedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countedConn{Conn: c}
	l.accepted <- cc
	return cc, nil
}

// TestTheWriterSendsWhatIsQueuedInOneWrite: messages queued together (a
// window's score with the stream's status) leave the realm's socket in
// one write, over the listener the realm serves on; the client still
// reads them as the separate messages they are, in order.
func TestTheWriterSendsWhatIsQueuedInOneWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countedListener{Listener: ln, accepted: make(chan *countedConn, 1)}
	msgs := [][]byte{[]byte(`{"type":"xr.status"}`), []byte(`{"type":"xr.score"}`), []byte(`{"type":"trust"}`)}
	writesBefore := make(chan int, 1)
	readerDone := make(chan struct{}) // closed to end the writer without a close frame
	var writers sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
		if err != nil {
			return
		}
		conn := <-counted.accepted
		c := &socket{ws: ws, ctx: context.Background(), closing: make(chan closeFrame, 1)}
		c.pushAll(msgs) // queued before the writer looks
		writesBefore <- conn.count()
		writers.Go(func() {
			(&Service{}).liveWriter(c, readerDone)
			conn.mu.Lock()
			defer conn.mu.Unlock()
			writesBefore <- conn.writes
		})
	})}
	go srv.Serve(cork.Listener(counted))
	defer srv.Close()
	defer writers.Wait()
	var ended sync.Once
	endWriter := func() { ended.Do(func() { close(readerDone) }) }
	defer endWriter()

	client, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, want := range msgs {
		_, got, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(got) != string(want) {
			t.Fatalf("message %d = %s, want %s", i, got, want)
		}
	}
	before := <-writesBefore
	endWriter()
	if after := <-writesBefore; after != before+1 {
		t.Fatalf("%d writes for %d queued messages, want 1", after-before, len(msgs))
	}
}

// BenchmarkWriterScoreAndStatus is the cost, to the realm's writer and the
// client reading over loopback, of a score and a status queued together:
// held, they leave in one write; "apart" is the writer before, a write
// each. One op is the pair, written and read.
func BenchmarkWriterScoreAndStatus(b *testing.B) {
	status := []byte(`{"type":"xr.status","xr":{"at":"2026-12-07T18:00:00.000000000Z","transport":"websocket","frames_accepted":43200,"enrollment":"enrolled"}}`)
	score := []byte(`{"type":"xr.score","xr":{"at":"2026-12-07T18:00:00.000000000Z","seq":43200,"time_us":600000000,"probability":0.97,"state":"trusted","score":0.85}}`)
	for _, mode := range []struct {
		name string
		wrap func(net.Listener) net.Listener
	}{{"held", cork.Listener}, {"apart", func(ln net.Listener) net.Listener { return ln }}} {
		b.Run(mode.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			sockets := make(chan *socket, 1)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				ws, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
				if err != nil {
					return
				}
				sockets <- &socket{ws: ws, ctx: context.Background(), closing: make(chan closeFrame, 1)}
			})}
			go srv.Serve(mode.wrap(ln))
			defer srv.Close()
			client, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			c := <-sockets
			readerDone := make(chan struct{})
			var writer sync.WaitGroup
			writer.Go(func() { (&Service{}).liveWriter(c, readerDone) })
			defer writer.Wait()
			defer close(readerDone)
			b.ReportAllocs()
			before := processCPU(b)
			for b.Loop() {
				c.pushAll([][]byte{status, score})
				for range 2 {
					if _, _, err := client.ReadMessage(); err != nil {
						b.Fatal(err)
					}
				}
			}
			// The time an op takes is the round trip, shorter apart (the
			// client reads the first message while the second is written);
			// the CPU both ends spend is what a busy node runs short of.
			b.ReportMetric(float64(processCPU(b)-before)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	r, err := cpuload.Read()
	if err != nil {
		b.Fatal(err)
	}
	return r.Process
}
