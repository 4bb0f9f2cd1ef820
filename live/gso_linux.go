package live

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoAvailable says whether the kernel may segment UDP (UDP_SEGMENT,
// Linux 4.18 and later); a refusal turns it off at run time.
const gsoAvailable = true

// gsoSpace is the room one UDP_SEGMENT control message takes.
var gsoSpace = unix.CmsgSpace(2)

// putSegmentSize writes a UDP_SEGMENT control message into oob (gsoSpace
// bytes): the kernel cuts the datagram into datagrams of size bytes.
func putSegmentSize(oob []byte, size int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(size)
}
