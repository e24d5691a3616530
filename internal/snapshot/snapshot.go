// Package snapshot owns the small vocabulary the stores share to copy
// themselves for a backup while they run: the AddFunc through which a store
// hands over each file of its snapshot, a helper that adds a file's first
// bytes (for files that only grow or never change), and a writer that counts
// what went through. It imports nothing of Outpost, so every store may use it.
package snapshot

import (
	"io"
	"os"
)

// AddFunc adds one file of a snapshot: its path relative to the part being
// snapshotted ("/"-separated), its size, and a writer of exactly size bytes.
type AddFunc = func(name string, size int64, write func(io.Writer) error) error

// AddFile adds the first size bytes of the file at path under name.
func AddFile(add AddFunc, name, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return add(name, size, func(w io.Writer) error {
		_, err := io.CopyN(w, f, size)
		return err
	})
}

// CountingWriter counts the bytes written through it.
type CountingWriter struct {
	W io.Writer
	N int64
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
