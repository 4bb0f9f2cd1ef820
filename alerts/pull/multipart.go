package pull

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"strings"

	"vigil/alerts/vendor"
)

// MaxPartBytes bounds one part of an event stream (1 MiB): a stream whose
// part grows past it is cut and reconnected.
const MaxPartBytes = 1 << 20

// errPartTooLarge is returned when a part passes MaxPartBytes.
var errPartTooLarge = errors.New("event stream part larger than 1 MiB")

// partReader reads the parts of a never-ending multipart stream
// (multipart/x-mixed-replace or multipart/mixed) line by line. It accepts
// what cameras send: parts with or without the blank line after their
// headers, with or without a closing delimiter.
type partReader struct {
	br    *bufio.Reader
	delim []byte
	// alive is called for every line read, heartbeats included: the
	// stream's idle timer restarts on it.
	alive  func()
	primed bool
}

type part struct {
	header textproto.MIMEHeader
	body   []byte
}

func newPartReader(r io.Reader, boundary string, alive func()) *partReader {
	return &partReader{br: bufio.NewReaderSize(r, 64<<10), delim: []byte("--" + strings.TrimPrefix(boundary, "--")), alive: alive}
}

// line reads one line, bounded by MaxPartBytes, without its line ending.
func (p *partReader) line() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := p.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxPartBytes {
			return nil, errPartTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(buf) > 0 && p.alive != nil {
			p.alive()
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				return bytes.TrimRight(buf, "\r\n"), nil
			}
			return nil, err
		}
		return bytes.TrimRight(buf, "\r\n"), nil
	}
}

func (p *partReader) isDelim(l []byte) (delim, final bool) {
	l = bytes.TrimRight(l, " \t")
	if bytes.Equal(l, p.delim) {
		return true, false
	}
	if bytes.Equal(l, append(p.delim[:len(p.delim):len(p.delim)], '-', '-')) {
		return true, true
	}
	return false, false
}

// next returns the next part. io.EOF ends the stream (server closed it).
func (p *partReader) next() (part, error) {
	if !p.primed {
		// Skip the preamble up to the first delimiter.
		for {
			l, err := p.line()
			if err != nil {
				return part{}, err
			}
			if d, final := p.isDelim(l); d {
				if final {
					return part{}, io.EOF
				}
				break
			}
		}
		p.primed = true
	}
	pt := part{header: textproto.MIMEHeader{}}
	inHeader := true
	var body [][]byte
	size := 0
	for {
		l, err := p.line()
		if err == io.EOF {
			if len(body) == 0 && inHeader {
				return part{}, io.EOF
			}
			pt.body = bytes.Join(body, []byte("\r\n"))
			return pt, nil // the last part of a stream cut short
		}
		if err != nil {
			return part{}, err
		}
		if d, final := p.isDelim(l); d {
			if final {
				p.primed = false
			}
			pt.body = bytes.Join(body, []byte("\r\n"))
			return pt, nil
		}
		if inHeader {
			if len(bytes.TrimSpace(l)) == 0 {
				inHeader = false
				continue
			}
			if name, value, ok := strings.Cut(string(l), ":"); ok && vendor.IsHeaderName(name) {
				pt.header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
				continue
			}
			inHeader = false // no blank line after the headers
		}
		size += len(l) + 2
		if size > MaxPartBytes {
			return part{}, errPartTooLarge
		}
		body = append(body, l)
	}
}
