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
		data, err := readJSON(newBoundedReader(stdin, limit), 0)
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
	data, err := readJSON(newBoundedReader(f, limit), info.Size())
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
func readJSON(r io.Reader, sizeHint int64) ([]byte, error) {
	// One buffer, sized for the whole file when its size is known, so that a large input
	// is neither grown step by step nor copied again once read.
	buf := bytes.NewBuffer(make([]byte, 0, max(sniffSize, sizeHint+bytes.MinRead)))
	if _, err := io.CopyN(buf, r, sniffSize); err != nil {
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		return nil, err
	}
	if head := bytes.TrimLeft(buf.Bytes(), " \t\r\n"); len(head) > 0 && head[0] != '{' && head[0] != '[' {
		return buf.Bytes(), nil
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}
