package snapshot

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestAddFileAndCount(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	os.WriteFile(p, []byte("0123456789"), 0o644)
	var got bytes.Buffer
	var gotName string
	var gotSize int64
	err := AddFile(func(name string, size int64, write func(io.Writer) error) error {
		gotName, gotSize = name, size
		cw := &CountingWriter{W: &got}
		if err := write(cw); err != nil {
			return err
		}
		if cw.N != size {
			t.Errorf("counted %d, want %d", cw.N, size)
		}
		return nil
	}, "wal/1", p, 4)
	if err != nil || gotName != "wal/1" || gotSize != 4 || got.String() != "0123" {
		t.Fatalf("AddFile: %v %q %d %q", err, gotName, gotSize, got.String())
	}
	if err := AddFile(func(string, int64, func(io.Writer) error) error { return nil }, "x", p+".missing", 1); err == nil {
		t.Error("a missing file was added")
	}
}
