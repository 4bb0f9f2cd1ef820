//go:build !linux

package live

import (
	"net"

	"golang.org/x/net/ipv4"
)

// rawSender: only Linux sends through its own sendmmsg.
type rawSender struct{}

func newRawSender(*net.UDPConn) *rawSender { return nil }

func (b *sendBatch) writeBatch(q []ipv4.Message) (int, error) { return b.batch.WriteBatch(q, 0) }
