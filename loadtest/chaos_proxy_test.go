//go:build chaos

package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// crashPoint recognises a publish after which a role is to die: it gets
// each outgoing publish's subject and body (headers stripped) and says
// whether this is the one, with a note for the report.
type crashPoint func(subject string, body []byte) (note string, hit bool)

// natsProxy passes one role's NATS connections through to the server, on
// the loopback interface. Armed with a crash point, it reads the NATS
// protocol the role sends; at the first publish the crash point accepts it
// forwards that publish, then drops everything else the connection sends,
// and reports. The killer then SIGKILLs the role: from the server's side the
// role died right after that publish, whatever it did a few microseconds
// later (an ack, the next state update). That is how a kill lands exactly
// between two steps of the protocol, e.g. after the warehouse commit's load
// result and before the command's ack.
//
// With several upstreams (the nodes of a NATS cluster) each connection
// goes to the first that answers, starting with the next one after the
// last connection's: when a node dies, the role's connection through it
// ends, and its reconnect lands on a live node.
type natsProxy struct {
	ln        net.Listener
	upstreams []string
	next      int // the upstream to try first for the next connection

	mu    sync.Mutex
	point crashPoint
	fired chan string
	conns map[net.Conn]bool
}

func startProxy(upstreams ...string) (*natsProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &natsProxy{ln: ln, upstreams: upstreams, conns: map[net.Conn]bool{}}
	go p.accept()
	return p, nil
}

// URL is what the role connects to.
func (p *natsProxy) URL() string { return "nats://" + p.ln.Addr().String() }

// arm sets the crash point; the channel receives the note of the publish
// that hit it, once.
func (p *natsProxy) arm(point crashPoint) <-chan string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.point = point
	p.fired = make(chan string, 1)
	return p.fired
}

// disarm removes the crash point if it did not fire; it reports whether it had.
func (p *natsProxy) disarm() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	fired := p.point == nil
	p.point = nil
	return fired
}

func (p *natsProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *natsProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *natsProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *natsProxy) serve(client net.Conn) {
	defer client.Close()
	up := p.dial()
	if up == nil {
		return // every server is down: the role reconnects later
	}
	defer up.Close()
	p.track(client, true)
	p.track(up, true)
	defer p.track(client, false)
	defer p.track(up, false)
	go func() {
		_, _ = io.Copy(client, up)
		client.Close()
		up.Close()
	}()
	_ = p.forward(client, up)
}

// dial connects to the first upstream that answers, from the one after
// the last connection's; nil if none does.
func (p *natsProxy) dial() net.Conn {
	p.mu.Lock()
	first := p.next
	p.next = (p.next + 1) % len(p.upstreams)
	p.mu.Unlock()
	timeout := 2 * time.Second
	if len(p.upstreams) > 1 {
		timeout = 500 * time.Millisecond
	}
	for i := range p.upstreams {
		up, err := net.DialTimeout("tcp", p.upstreams[(first+i)%len(p.upstreams)], timeout)
		if err == nil {
			return up
		}
	}
	return nil
}

// forward copies the client's protocol to the server operation by
// operation, checking each publish against the crash point.
func (p *natsProxy) forward(client io.Reader, up io.Writer) error {
	br := bufio.NewReaderSize(client, 64<<10)
	bw := bufio.NewWriterSize(up, 64<<10)
	held := false
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return err
		}
		var payload []byte
		if op := opOf(line); op == "PUB" || op == "HPUB" {
			f := strings.Fields(string(line))
			if len(f) < 3 {
				return fmt.Errorf("bad %s line %q", op, line)
			}
			total, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return fmt.Errorf("bad %s line %q", op, line)
			}
			hdr := 0
			if op == "HPUB" {
				if hdr, err = strconv.Atoi(f[len(f)-2]); err != nil || hdr > total {
					return fmt.Errorf("bad %s line %q", op, line)
				}
			}
			payload = make([]byte, total+2) // with the trailing CRLF
			if _, err := io.ReadFull(br, payload); err != nil {
				return err
			}
			if !held {
				if note, fired := p.check(f[1], payload[hdr:total]); fired != nil {
					// This publish goes out; nothing after it does.
					bw.Write(line)
					bw.Write(payload)
					err := bw.Flush()
					held = true
					fired <- note
					if err != nil {
						return err
					}
					continue
				}
			}
		}
		if held {
			continue
		}
		bw.Write(line)
		bw.Write(payload)
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

func opOf(line []byte) string {
	i := bytes.IndexAny(line, " \t\r\n")
	if i < 0 {
		i = len(line)
	}
	return strings.ToUpper(string(line[:i]))
}

// check returns the channel to report to when the publish hits the armed
// crash point (which is then disarmed), else nil.
func (p *natsProxy) check(subject string, body []byte) (string, chan string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.point == nil {
		return "", nil
	}
	note, hit := p.point(subject, body)
	if !hit {
		return "", nil
	}
	p.point = nil
	return note, p.fired
}
