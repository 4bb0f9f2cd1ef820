package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"
)

// decoders runs the snapshot ffmpeg processes: at most max alive at any
// moment (started and not yet reaped, spares included), each decoding one
// picture from its stdin and exiting.
//
// Starting ffmpeg costs more than decoding a 1080p keyframe (it links some
// 200 shared libraries), so while Snapshots.Run runs, the slots not in use
// hold spares: processes already started and waiting on stdin for the
// format recent snapshots used. A snapshot takes a spare of its format, or
// starts a process in a free slot, or waits, first come first served, for a
// slot; a slot freed while snapshots wait goes to the first of them, never
// to a spare. Idle spares of another format are ended to make room.
type decoders struct {
	ffmpeg string
	width  int
	max    int

	mu      sync.Mutex
	alive   int
	spares  []*decoder
	ending  []*decoder // spares killed to free their slot, not yet reaped
	waiting []*decoderWait
	want    []string // formats of the last max live snapshots: the spares to keep
	// afterExit is set while spares are kept (Run runs), and called
	// without mu when a process has been reaped and its slot freed.
	afterExit func()
	// spareFailed is set when a spare exited without being used, until a
	// snapshot succeeds again: no spares meanwhile.
	spareFailed bool
}

// decoder is one ffmpeg process.
type decoder struct {
	format string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *limitedBuffer
	stderr *limitedBuffer
	exited chan struct{} // closed once reaped; err is set then
	err    error
	used   bool // handed to a snapshot (under decoders.mu)
	spare  bool // started ahead, as a spare
}

func (d *decoder) kill() { _ = d.cmd.Process.Kill() }

type decoderWait struct {
	format string
	got    chan *decoder // buffered 1
}

func newDecoders(ffmpeg string, width, max int) *decoders {
	return &decoders{ffmpeg: ffmpeg, width: width, max: max, want: []string{"h264"}}
}

// decoderArgs is the ffmpeg command line for one picture of the given input
// format (h264, hevc or mp4) on stdin: a JPEG width pixels wide on stdout.
func decoderArgs(format string, width int) []string {
	// One decoder thread: a single keyframe gains nothing from frame
	// threads, and two ffmpeg at once should not take every core.
	return []string{"-hide_banner", "-loglevel", "error", "-threads", "1",
		"-f", format, "-i", "pipe:0",
		"-frames:v", "1", "-vf", "scale=" + strconv.Itoa(width) + ":-2",
		"-threads", "1", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4", "pipe:1"}
}

// mallocTunables make glibc's malloc in ffmpeg serve its frame buffers
// (some MB each at 1080p, allocated by the probe's decoder and again by the
// real one) from a heap kept and grown in 64 MiB steps on transparent huge
// pages, instead of a fresh mmap per buffer: far fewer page faults, which
// are dear in a VM. Measured: 10–20 % less CPU per snapshot, the same JPEG
// bytes. Other C libraries ignore the variable.
const mallocTunables = "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=134217728:glibc.malloc.top_pad=67108864:glibc.malloc.hugetlb=1"

// startLocked starts a process for format in a slot already counted in
// alive; on failure the slot is freed again.
func (p *decoders) startLocked(format string) (*decoder, error) {
	cmd := exec.Command(p.ffmpeg, decoderArgs(format, p.width)...)
	d := &decoder{format: format, cmd: cmd, out: &limitedBuffer{max: maxJPEG},
		stderr: &limitedBuffer{max: 4 << 10}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.stderr
	cmd.WaitDelay = time.Second
	if os.Getenv("GLIBC_TUNABLES") == "" { // an operator's own setting wins
		cmd.Env = append(os.Environ(), "GLIBC_TUNABLES="+mallocTunables)
	}
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		p.alive--
		return nil, err
	}
	d.stdin = stdin
	go func() {
		d.err = cmd.Wait()
		p.exit(d)
		close(d.exited) // last: who waits for it finds the slot freed
	}()
	return d, nil
}

// exit frees d's slot once it has been reaped: for the first waiting
// snapshot if any, else for a spare.
func (p *decoders) exit(d *decoder) {
	p.mu.Lock()
	p.alive--
	if i := slices.Index(p.ending, d); i >= 0 {
		p.ending = slices.Delete(p.ending, i, i+1)
	}
	if i := slices.Index(p.spares, d); i >= 0 {
		p.spares = slices.Delete(p.spares, i, i+1)
		if d.err != nil && !d.used && p.afterExit != nil {
			p.spareFailed = true // ffmpeg does not stay up: no spares until a snapshot works
		}
	}
	p.grantLocked()
	after := p.afterExit
	p.mu.Unlock()
	if after != nil {
		after()
	}
}

// grantLocked starts processes for waiting snapshots while slots are free.
func (p *decoders) grantLocked() {
	for len(p.waiting) > 0 && p.alive < p.max {
		w := p.waiting[0]
		p.waiting = p.waiting[1:]
		p.alive++
		d, err := p.startLocked(w.format)
		if err != nil {
			d = &decoder{format: w.format, err: err}
		}
		w.got <- d
	}
}

// take returns a process for one picture in format: a spare, a new one in
// a free slot, or the first slot freed within wait (else ErrBusy). The
// caller feeds it with run.
func (p *decoders) take(ctx context.Context, format string, wait time.Duration) (*decoder, error) {
	p.mu.Lock()
	p.wantLocked(format)
	if i := slices.IndexFunc(p.spares, func(d *decoder) bool { return d.format == format }); i >= 0 {
		d := p.spares[i]
		p.spares = slices.Delete(p.spares, i, i+1)
		d.used = true
		p.mu.Unlock()
		return d, nil
	}
	if p.alive < p.max && len(p.waiting) == 0 {
		p.alive++
		d, err := p.startLocked(format)
		if d != nil {
			d.used = true
		}
		p.mu.Unlock()
		return d, err
	}
	w := &decoderWait{format: format, got: make(chan *decoder, 1)}
	p.waiting = append(p.waiting, w)
	// An idle spare (of another format) gives its slot up.
	if len(p.spares) > 0 {
		p.spares[0].kill()
		p.ending = append(p.ending, p.spares[0])
		p.spares = slices.Delete(p.spares, 0, 1)
	}
	p.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case d := <-w.got:
		return p.granted(d)
	case <-timer.C:
		err = ErrBusy
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	if i := slices.Index(p.waiting, w); i >= 0 {
		p.waiting = slices.Delete(p.waiting, i, i+1)
		p.mu.Unlock()
		return nil, err
	}
	p.mu.Unlock()
	// Granted meanwhile: the process is started, end it.
	if d, gerr := p.granted(<-w.got); gerr == nil {
		d.kill()
		<-d.exited
	}
	return nil, err
}

func (p *decoders) granted(d *decoder) (*decoder, error) {
	if d.cmd == nil {
		return nil, d.err
	}
	p.mu.Lock()
	d.used = true
	p.mu.Unlock()
	return d, nil
}

// run feeds in to d and returns the JPEG it wrote. d is killed when ctx
// ends or timeout after in started to flow, and reaped before run returns.
func (d *decoder) run(ctx context.Context, in io.Reader, timeout time.Duration) ([]byte, error) {
	timedOut := make(chan struct{})
	timer := time.AfterFunc(timeout, func() { close(timedOut); d.kill() })
	defer timer.Stop()
	stop := context.AfterFunc(ctx, d.kill)
	defer stop()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		_, _ = io.Copy(d.stdin, in) // a failed write shows as ffmpeg's error
		_ = d.stdin.Close()
	}()
	<-d.exited
	// Wait closed the pipe, so the copy ends unless in blocks in Read; the
	// caller closes such a reader after run returns, which ends it then.
	select {
	case <-fed:
	case <-time.After(time.Second):
	}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case isClosed(timedOut):
		return nil, fmt.Errorf("no picture within %s: %w", timeout, context.DeadlineExceeded)
	case d.err != nil:
		return nil, fmt.Errorf("%w: %s", d.err, bytes.TrimSpace(d.stderr.Bytes()))
	case !bytes.HasPrefix(d.out.Bytes(), []byte{0xff, 0xd8}):
		return nil, errors.New("no JPEG in ffmpeg's output")
	}
	return d.out.Bytes(), nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// wantLocked records the input format of a snapshot asked for, for the
// spares to keep.
func (p *decoders) wantLocked(format string) {
	if format == "mp4" {
		return // footage snapshots are rare: no spares for them
	}
	p.want = append(p.want, format)
	if len(p.want) > p.max {
		p.want = p.want[len(p.want)-p.max:]
	}
}

// worked records that a snapshot succeeded: ffmpeg works, so spares are
// kept again if one had failed.
func (p *decoders) worked() {
	p.mu.Lock()
	after := p.afterExit
	retry := p.spareFailed
	p.spareFailed = false
	p.mu.Unlock()
	if retry && after != nil {
		after()
	}
}

// refill starts spares in free slots when no snapshot waits: one per
// format in want, and more of the latest format while slots are free.
func (p *decoders) refill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	for p.afterExit != nil && !p.spareFailed && len(p.waiting) == 0 && p.alive < p.max {
		format := p.spareFormatLocked()
		p.alive++
		var d *decoder
		if d, err = p.startLocked(format); err != nil {
			p.spareFailed = true
			break
		}
		d.spare = true
		p.spares = append(p.spares, d)
	}
	return err
}

// spareFormatLocked is the format of the next spare: the first in want
// that has fewer spares than it appears in want, else the latest.
func (p *decoders) spareFormatLocked() string {
	for _, f := range p.want {
		need := 0
		for _, g := range p.want {
			if g == f {
				need++
			}
		}
		have := 0
		for _, s := range p.spares {
			if s.format == f {
				have++
			}
		}
		if have < need {
			return f
		}
	}
	return p.want[len(p.want)-1]
}

// keepSpares makes refill start spares; afterExit is called whenever a
// slot is freed.
func (p *decoders) keepSpares(afterExit func()) {
	p.mu.Lock()
	p.afterExit = afterExit
	p.mu.Unlock()
}

// closeSpares stops keeping spares, ends those there are and waits until
// they have been reaped.
func (p *decoders) closeSpares() {
	p.mu.Lock()
	p.afterExit = nil
	spares := append(slices.Clone(p.spares), p.ending...)
	p.spares = p.spares[:0]
	p.mu.Unlock()
	for _, d := range spares {
		d.kill()
		<-d.exited
	}
}
