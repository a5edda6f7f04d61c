package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// checkOutput makes sure the report can be written where --output says, before any work
// is done, without touching the file: a temporary file is created beside it and removed.
func checkOutput(output string) error {
	if output == "" {
		return nil
	}
	target, direct, err := outputTarget(output)
	if err != nil || direct {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(target), tempPattern(target))
	if err != nil {
		return usageErrorf("--output %s: %v", output, describePathError(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// writeOutput calls write with standard output, or, when output names a file, with a
// temporary file beside it that replaces it once written, synced and closed: a full disk,
// an error or an interruption never leaves a truncated report behind, nor spoils the
// previous one. Nothing is written once ctx is done.
func writeOutput(ctx context.Context, output string, stdout io.Writer, write func(io.Writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if output == "" {
		if err := write(contextWriter{ctx, stdout}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	target, direct, err := outputTarget(output)
	if err != nil {
		return err
	}
	if direct {
		return writeDirect(target, write)
	}
	mode := fs.FileMode(0o644)
	if info, err := os.Stat(target); err == nil {
		mode = info.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(target), tempPattern(target))
	if err != nil {
		return usageErrorf("--output %s: %v", output, describePathError(err))
	}
	tmp := f.Name()
	defer trackTemp(ctx, tmp)()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(contextWriter{ctx, f}, 64<<10)
	if err := write(bw); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		done = true
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	done = true
	return nil
}

// contextWriter stops writing once its context is done, so that a long report stops
// at the next write after a signal.
type contextWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c contextWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// outputTarget returns the file --output names, following symbolic links so that the
// file a link points to is replaced rather than the link. direct is true for what cannot
// be replaced by renaming, such as a device or a named pipe (--output /dev/stderr): it is
// written in place.
func outputTarget(output string) (target string, direct bool, err error) {
	target = output
	if resolved, err := filepath.EvalSymlinks(output); err == nil {
		target = resolved
	}
	info, err := os.Stat(target)
	switch {
	case err == nil && info.IsDir():
		return "", false, usageErrorf("--output %s: is a directory; name a file", output)
	case err == nil && !info.Mode().IsRegular():
		return target, true, nil
	}
	return target, false, nil
}

// writeDirect writes to a device or pipe that already exists.
func writeDirect(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return usageErrorf("--output: %v", err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// tempPattern names the temporary file beside target: hidden, and recognisably its.
func tempPattern(target string) string {
	return "." + filepath.Base(target) + ".*.tmp"
}

// describePathError drops the temporary file's name from an error about creating it, so
// that the message is about the folder the user named.
func describePathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot create a file in %s: %w", filepath.Dir(pe.Path), pe.Err)
	}
	return err
}
