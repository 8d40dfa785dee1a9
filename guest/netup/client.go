package netup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"
)

// transport carries DHCP payloads: send broadcasts one from port 68 to
// port 67; recv returns the next payload sent to port 68, or an error
// wrapping os.ErrDeadlineExceeded at the deadline.
type transport interface {
	send(payload []byte) error
	recv(ctx context.Context, deadline time.Time) ([]byte, error)
}

// Retransmission (RFC 2131 §4.1): the delay doubles up to 64 s and is
// randomised. The RFC's first delay is 4 s; a VM boot waits on this, so we
// start at 2 s as udhcpc's 3 s default is also shorter than the RFC's.
const (
	firstDelay = 2 * time.Second
	maxDelay   = 64 * time.Second
)

// requested are the options asked for in option 55.
var requested = []byte{optSubnetMask, optRouter, optDNS, optHostname, optDomain, optLeaseTime, optServerID}

// client runs one DHCP exchange over a transport.
type client struct {
	t        transport
	mac      []byte
	hostname string
	start    time.Time
	delay    func(attempt int) time.Duration // retransmission delay
}

// lease runs DISCOVER → OFFER → REQUEST → ACK, starting over after a NAK,
// until it gets an ACK or ctx ends.
func (c *client) lease(ctx context.Context) (Lease, error) {
	c.start = time.Now()
	for {
		xid := rand.Uint32()
		offer, err := c.exchange(ctx, c.discover(xid), func(m *message) bool {
			return m.opts.msgType() == msgOffer
		})
		if err != nil {
			return Lease{}, fmt.Errorf("discover: %w", err)
		}
		server := offer.opts.addr(optServerID)
		ack, err := c.exchange(ctx, c.request(xid, offer), func(m *message) bool {
			t := m.opts.msgType()
			return (t == msgAck || t == msgNak) && m.opts.addr(optServerID) == server
		})
		if err != nil {
			return Lease{}, fmt.Errorf("request %s from %s: %w", netip.AddrFrom4(offer.yiaddr), server, err)
		}
		if ack.opts.msgType() == msgAck {
			return leaseFrom(ack)
		}
		// A NAK: the offer is gone, start over (RFC 2131 §3.1 step 5).
	}
}

// exchange sends req and retransmits it until a reply to it passes
// accept or ctx ends.
func (c *client) exchange(ctx context.Context, req *message, accept func(*message) bool) (*message, error) {
	for attempt := 0; ; attempt++ {
		req.secs = uint16(min(time.Since(c.start)/time.Second, 0xffff))
		if err := c.t.send(req.marshal()); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(c.delay(attempt))
		for {
			b, err := c.t.recv(ctx, deadline)
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				break // retransmit
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("%d attempts: %w", attempt+1, ctx.Err())
				}
				return nil, err
			}
			m, err := unmarshal(b)
			if err == nil && c.ours(req, m) && accept(m) {
				return m, nil
			}
			// Anything else on the wire (other clients' replies, junk) is
			// not ours: keep listening.
		}
	}
}

// ours reports whether m replies to req: a BOOTREPLY with its
// transaction id and our hardware address.
func (c *client) ours(req, m *message) bool {
	return m.op == opReply && m.xid == req.xid && string(m.chaddr) == string(c.mac)
}

// backoff is RFC 2131 §4.1's delay with ±1/8 jitter, so that many VMs
// started together do not retransmit in step.
func backoff(attempt int) time.Duration {
	d := min(firstDelay<<min(attempt, 6), maxDelay)
	return d - d/8 + rand.N(d/4)
}

func (c *client) base(xid uint32, typ byte) *message {
	o := options{
		optMessageType:  {typ},
		optParamRequest: requested,
		// Option 57: we read up to a full Ethernet frame.
		optMaxSize: {1500 >> 8, 1500 & 0xff},
		// Option 61: hardware type then address, as udhcpc and dhclient send.
		optClientID: append([]byte{htypeEthernet}, c.mac...),
	}
	if c.hostname != "" {
		o[optHostname] = []byte(c.hostname)
	}
	return &message{op: opRequest, xid: xid, chaddr: c.mac, opts: o}
}

func (c *client) discover(xid uint32) *message { return c.base(xid, msgDiscover) }

// request asks for an offered address from the server that offered it
// (RFC 2131 §4.3.2, SELECTING state: ciaddr 0, options 50 and 54).
func (c *client) request(xid uint32, offer *message) *message {
	m := c.base(xid, msgRequest)
	m.opts[optRequestedIP] = offer.yiaddr[:]
	if id, ok := offer.opts[optServerID]; ok {
		m.opts[optServerID] = id
	}
	return m
}
