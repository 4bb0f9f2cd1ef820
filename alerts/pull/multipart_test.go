package pull

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPartReader(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		want         []string // bodies, in order
		wantErr      error
	}{
		{"dahua attach", "--myboundary\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nHeartbeat\r\n--myboundary\r\nContent-Type: text/plain\r\n\r\nCode=VideoLoss;action=Start;index=0\r\n--myboundary\r\n",
			[]string{"Heartbeat", "Code=VideoLoss;action=Start;index=0"}, io.EOF},
		{"no blank line after the headers", "--myboundary\r\nContent-Type: text/plain\r\nCode=VideoBlind;action=Start;index=1\r\n--myboundary\r\n",
			[]string{"Code=VideoBlind;action=Start;index=1"}, io.EOF},
		{"preamble and closing delimiter", "junk\r\n--b\r\nContent-Type: application/xml\r\n\r\n<a/>\r\n--b--\r\n",
			[]string{"<a/>"}, io.EOF},
		{"stream cut inside a part", "--b\r\n\r\nCode=VideoMotion;action=Start",
			[]string{"Code=VideoMotion;action=Start"}, io.EOF},
		{"part over 1 MiB", "--b\r\n\r\n" + strings.Repeat("x\r\n", MaxPartBytes/3+2), nil, errPartTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boundary := "b"
			if strings.HasPrefix(tc.stream, "--myboundary") {
				boundary = "myboundary"
			}
			alive := 0
			pr := newPartReader(strings.NewReader(tc.stream), boundary, func() { alive++ })
			var got []string
			var err error
			for range 100 {
				var p part
				if p, err = pr.next(); err != nil {
					break
				}
				got = append(got, string(p.body))
			}
			if !errors.Is(err, tc.wantErr) || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if alive == 0 {
				t.Fatal("the idle timer was never told of data")
			}
		})
	}
}

func FuzzPartReader(f *testing.F) {
	f.Add("myboundary", []byte("--myboundary\r\nContent-Type: text/plain\r\n\r\nHeartbeat\r\n--myboundary\r\n"))
	f.Add("boundary", []byte("--boundary\r\nContent-Type: application/xml\r\nContent-Length: 4\r\n<a/>\r\n--boundary--\r\n"))
	f.Fuzz(func(t *testing.T, boundary string, stream []byte) {
		if boundary == "" {
			return
		}
		pr := newPartReader(bytes.NewReader(stream), boundary, nil)
		for range len(stream) + 2 { // every part consumes at least one line
			p, err := pr.next()
			if err != nil {
				return
			}
			if len(p.body) > MaxPartBytes {
				t.Fatalf("part of %d bytes", len(p.body))
			}
		}
		t.Fatal("the reader did not end on a finite stream")
	})
}
