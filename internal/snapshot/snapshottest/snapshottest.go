// Package snapshottest helps the stores' tests take a snapshot into a
// directory, the way a restore lays it out.
package snapshottest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"outpost/internal/snapshot"
)

// ToDir returns an AddFunc that writes each file of a snapshot under dir
// (creating its directories) and fails when a file's writer does not write
// exactly the size announced for it.
func ToDir(dir string) snapshot.AddFunc {
	return func(name string, size int64, write func(io.Writer) error) error {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			return err
		}
		if int64(buf.Len()) != size {
			return fmt.Errorf("%s: %d bytes, announced %d", name, buf.Len(), size)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, buf.Bytes(), 0o644)
	}
}
