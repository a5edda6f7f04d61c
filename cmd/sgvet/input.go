package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// errTooLarge is a boundedReader's error once more than its limit was read.
var errTooLarge = errors.New("input larger than its limit")

// boundedReader reads at most limit bytes from r; one byte more is errTooLarge, so that an
// endless pipe or a device such as /dev/zero ends with an error instead of exhausting
// memory.
type boundedReader struct {
	r    io.Reader
	left int64 // bytes that may still be read, plus the one that proves the excess
}

func newBoundedReader(r io.Reader, limit byteSize) *boundedReader {
	return &boundedReader{r: r, left: int64(limit) + 1}
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left <= 0 {
		return n, errTooLarge
	}
	return n, err
}

// exceeded reports whether more than the limit was read.
func (b *boundedReader) exceeded() bool { return b.left <= 0 }

// tooLarge is the error for an input larger than max_input_size, naming it and where it
// is set.
func tooLarge(flag, name string, limit byteSize) error {
	return usageErrorf("%s %s: larger than max_input_size, %s: give a smaller input, or raise the limit with --max-input-size or max_input_size in the configuration", flag, name, limit)
}

// readInput reads one input, the named file or stdin ("-"), up to limit bytes.
func readInput(name string, stdin io.Reader, limit byteSize) ([]byte, error) {
	if name == "-" {
		data, err := readJSON(newBoundedReader(stdin, limit))
		if errors.Is(err, errTooLarge) {
			return nil, tooLarge("--input", "-", limit)
		}
		if err != nil {
			return nil, usageErrorf("--input -: %v", err)
		}
		return data, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, usageErrorf("--input: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, usageErrorf("--input: %v", err)
	}
	if info.IsDir() {
		return nil, usageErrorf("--input %s: is a directory; name a file", name)
	}
	if info.Mode().IsRegular() && info.Size() > int64(limit) {
		return nil, tooLarge("--input", fmt.Sprintf("%s (%d bytes)", name, info.Size()), limit)
	}
	data, err := readJSON(newBoundedReader(f, limit))
	if errors.Is(err, errTooLarge) {
		return nil, tooLarge("--input", name, limit)
	}
	if err != nil {
		return nil, usageErrorf("--input %s: %v", name, err)
	}
	return data, nil
}

// sniffSize is how much of an input is read before deciding whether it can be JSON.
const sniffSize = 64 << 10

// readJSON reads r to its end, unless its first bytes show that it is not JSON (the aws
// CLI's JSON starts with { after blanks): then only those bytes are returned, enough for
// the parser to say what is wrong, and a device like /dev/zero is not read to the limit.
func readJSON(r io.Reader) ([]byte, error) {
	head := make([]byte, sniffSize)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return head, nil
	case err != nil:
		return nil, err
	}
	if trimmed := bytes.TrimLeft(head, " \t\r\n"); len(trimmed) > 0 && trimmed[0] != '{' && trimmed[0] != '[' {
		return head, nil
	}
	rest, err := io.ReadAll(r)
	return append(head, rest...), err
}
