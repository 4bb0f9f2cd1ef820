//go:build !linux

package live

// gsoAvailable: only Linux segments UDP in the kernel.
const gsoAvailable = false

var gsoSpace = 0

func putSegmentSize(oob []byte, size int) {}
