package natstest

import (
	"net"
	"sync"
	"testing"
)

// StallingProxy is a TCP proxy between a client and its NATS server
// that can hold everything back for a while without closing a
// connection: a store that answers nothing in time, as one does to a node
// whose calls time out under load or while JetStream elects a leader,
// with nothing lost and no reconnect once it lets go.
type StallingProxy struct {
	ln      net.Listener
	to      string
	mu      sync.Mutex
	stalled bool
	resumed *sync.Cond
	conns   []net.Conn
	copying sync.WaitGroup
}

// NewStallingProxy listens on a loopback port and forwards every connection
// to the address to, until the test ends.
func NewStallingProxy(t testing.TB, to string) *StallingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &StallingProxy{ln: ln, to: to}
	p.resumed = sync.NewCond(&p.mu)
	p.copying.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// URL is the NATS URL that reaches the server through the proxy.
func (p *StallingProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *StallingProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.copying.Go(func() { p.pipe(s, c) })
		p.copying.Go(func() { p.pipe(c, s) })
	}
}

// pipe copies from src to dst, holding each read back while stalled.
func (p *StallingProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.stalled {
				p.resumed.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Stall holds everything back, in both directions, until Resume.
func (p *StallingProxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Resume lets everything held back go on, in order.
func (p *StallingProxy) Resume() {
	p.mu.Lock()
	p.stalled = false
	p.resumed.Broadcast()
	p.mu.Unlock()
}

func (p *StallingProxy) close() {
	p.ln.Close()
	p.Resume()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.copying.Wait()
}
