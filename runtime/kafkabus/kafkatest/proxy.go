package kafkatest

import (
	endian "encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Proxy is a loopback TCP proxy in front of the test broker. It reads the
// client id from the first Kafka request of each connection, so that a
// test can cut off some clients (Cut) while the others carry on: a client
// cut off has its connections closed and every new one closed after its
// first request, as when a network path is down.
type Proxy struct {
	ln      net.Listener
	backend string
	wg      sync.WaitGroup

	mu    sync.Mutex
	cut   map[string]bool       // client id prefixes cut off
	conns map[net.Conn]string   // client connections → client id
	peers map[net.Conn]net.Conn // client connection → broker connection
}

func newProxy(ln net.Listener, backend string) *Proxy {
	p := &Proxy{ln: ln, backend: backend, cut: map[string]bool{}, conns: map[net.Conn]string{}, peers: map[net.Conn]net.Conn{}}
	p.wg.Go(p.accept)
	return p
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut cuts off the clients whose client id starts with prefix.
func (p *Proxy) Cut(prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[prefix] = true
	for c, id := range p.conns {
		if strings.HasPrefix(id, prefix) {
			p.drop(c)
		}
	}
}

// Restore lets the clients cut off by Cut(prefix) connect again.
func (p *Proxy) Restore(prefix string) {
	p.mu.Lock()
	delete(p.cut, prefix)
	p.mu.Unlock()
}

func (p *Proxy) isCut(id string) bool {
	for prefix := range p.cut {
		if strings.HasPrefix(id, prefix) {
			return true
		}
	}
	return false
}

// drop closes a client connection and its broker side; p.mu is held.
func (p *Proxy) drop(c net.Conn) {
	_ = c.Close()
	if b := p.peers[c]; b != nil {
		_ = b.Close()
	}
	delete(p.conns, c)
	delete(p.peers, c)
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve reads the connection's first request, then either drops it (its
// client is cut off) or pipes it to the broker.
func (p *Proxy) serve(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = "" // closed by close() while its first request is awaited
	p.mu.Unlock()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	first, id, err := readFirstRequest(c)
	_ = c.SetReadDeadline(time.Time{})
	p.mu.Lock()
	if _, open := p.conns[c]; err != nil || !open || p.isCut(id) {
		p.drop(c)
		p.mu.Unlock()
		return
	}
	p.conns[c] = id
	p.mu.Unlock()
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		p.mu.Lock()
		p.drop(c)
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	if _, ok := p.conns[c]; !ok { // cut meanwhile
		p.mu.Unlock()
		_ = b.Close()
		return
	}
	p.peers[c] = b
	p.mu.Unlock()
	if _, err := b.Write(first); err != nil {
		p.mu.Lock()
		p.drop(c)
		p.mu.Unlock()
		return
	}
	var pipes sync.WaitGroup
	pipes.Go(func() { _, _ = io.Copy(b, c); _ = b.Close() })
	pipes.Go(func() { _, _ = io.Copy(c, b); _ = c.Close() })
	pipes.Wait()
	p.mu.Lock()
	p.drop(c)
	p.mu.Unlock()
}

// readFirstRequest reads one size-prefixed Kafka request and the client id
// of its header (api key, api version, correlation id, client id as a
// nullable string: the same in every request header version).
func readFirstRequest(c net.Conn) ([]byte, string, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, "", err
	}
	n := endian.BigEndian.Uint32(size[:])
	if n < 10 || n > 1<<20 {
		return nil, "", io.ErrUnexpectedEOF
	}
	buf := make([]byte, 4+n)
	copy(buf, size[:])
	if _, err := io.ReadFull(c, buf[4:]); err != nil {
		return nil, "", err
	}
	l := int16(endian.BigEndian.Uint16(buf[12:14]))
	if l < 0 || 14+int(l) > len(buf) {
		return buf, "", nil
	}
	return buf, string(buf[14 : 14+int(l)]), nil
}

// close stops accepting and closes every connection.
func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		p.drop(c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
