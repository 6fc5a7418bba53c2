package cork

import (
	"io"
	"net"
	"sync"
)

// HeldBytes is the most a held connection keeps before it writes: a
// message that does not fit is written after what is held, and one larger
// than this on its own, uncopied.
const HeldBytes = 8 << 10

// Listener returns ln with every connection it accepts wrapped in a Conn.
func Listener(ln net.Listener) net.Listener { return &listener{Listener: ln} }

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return &Conn{Conn: c}, nil
}

// Conn is a connection whose writes can be held and sent together. Its
// methods are safe for concurrent use, as a net.Conn's are: a write from
// another goroutine while the connection is held (a WebSocket library's
// answer to a ping, from its reader) joins what is held, in order.
type Conn struct {
	net.Conn

	mu   sync.Mutex
	held bool
	buf  *[]byte // from bufs while held and something was written
	err  error   // a failed write while held, returned by Flush
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, HeldBytes); return &b }}

// NetConn is the connection beneath, for code that unwraps connections.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Hold keeps the writes that follow until Flush. Holding a held
// connection changes nothing.
func (c *Conn) Hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// Flush writes what was held, in one write, and lets writes through again.
// It returns the first error of a write since Hold, the one that failed
// while held included; the connection is then as broken as that write
// left it, and its user should close it.
func (c *Conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	err := c.flushLocked()
	if c.err != nil {
		err, c.err = c.err, nil
	}
	return err
}

// flushLocked writes what is held and returns the buffer to the pool, so
// that an idle connection keeps none.
func (c *Conn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	var err error
	if len(*b) > 0 {
		_, err = c.Conn.Write(*b)
	}
	*b = (*b)[:0]
	bufs.Put(b)
	return err
}

// Write writes p at once, or, while the connection is held, keeps a copy
// of it to send with the rest. A held write reports success: the error of
// sending it comes from Flush.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		return c.Conn.Write(p)
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.buf != nil && len(*c.buf)+len(p) > cap(*c.buf) {
		if err := c.flushLocked(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if len(p) > HeldBytes {
		n, err := c.Conn.Write(p)
		if err != nil {
			c.err = err
		}
		return n, err
	}
	if c.buf == nil {
		c.buf = bufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// ReadFrom lets an HTTP server's response body reach the connection
// beneath the way it would without the wrapper (sendfile for a
// *net.TCPConn), once what is held has gone.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	c.mu.Lock()
	if c.held || c.buf != nil {
		c.mu.Unlock()
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	c.mu.Unlock()
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the connection beneath, as an HTTP server does
// before closing a connection it refused, when that connection can.
func (c *Conn) CloseWrite() error {
	if err := c.Flush(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection beneath at once, unblocking a write in
// progress, and drops what is held: Flush first to send it.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	if c.buf != nil {
		*c.buf = (*c.buf)[:0]
		bufs.Put(c.buf)
		c.buf = nil
	}
	c.held = false
	c.mu.Unlock()
	return err
}

// Of finds the Conn beneath c through connections that name the one
// beneath them, and nil when there is none.
func Of(c net.Conn) *Conn {
	for range 8 { // a chain of wrappers, not a cycle
		switch x := c.(type) {
		case *Conn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}
