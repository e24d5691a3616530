package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapBackend is a fakeBackend that snapshots one file holding its name.
type snapBackend struct{ fakeBackend }

func (b *snapBackend) Snapshot(_ context.Context, add AddFunc) error {
	content := "data of " + b.name
	return add("part-1", int64(len(content)), func(w io.Writer) error {
		_, err := io.WriteString(w, content)
		return err
	})
}

func TestBackupAndRestore(t *testing.T) {
	var order []string
	dir := t.TempDir()
	s := openT(t, dir, &Options{
		OpenMetrics: func(string) (MetricsBackend, error) {
			return &snapBackend{fakeBackend{name: "metrics", order: &order}}, nil
		},
		OpenLogs: func(string) (LogsBackend, error) { return &snapBackend{fakeBackend{name: "logs", order: &order}}, nil },
	})
	must(t)(s.ConsumeLogs(context.Background(), logs("checkout", 7)))
	// A file replaced atomically by its owner is copied; a registered owner is
	// asked; temporary files are left out.
	os.MkdirAll(filepath.Join(dir, "detect", "rules"), 0o755)
	os.WriteFile(filepath.Join(dir, "detect", "rules", "g.yml"), []byte("groups: []\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "detect", "rules", "g.yml.123.tmp"), []byte("half"), 0o644)
	os.MkdirAll(filepath.Join(dir, "detect", "incidents"), 0o755)
	os.WriteFile(filepath.Join(dir, "detect", "incidents", "raw-copy-would-be-wrong"), []byte("x"), 0o644)
	s.AddSnapshotter("detect/incidents", snapFunc(func(ctx context.Context, add AddFunc) error {
		return add("incidents.db", 2, func(w io.Writer) error { _, err := w.Write([]byte("ok")); return err })
	}))

	var buf bytes.Buffer
	if err := s.Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"meta.db", "tsdb/part-1", "logs/part-1", "detect/incidents/incidents.db", "detect/rules/g.yml", "FORMAT"} {
		if !strings.Contains(got+" ", want+" ") {
			t.Errorf("backup lacks %s: %s", want, got)
		}
	}
	for _, not := range []string{"LOCK", "UNCLEAN_SHUTDOWN", ".tmp", "raw-copy"} {
		if strings.Contains(got, not) {
			t.Errorf("backup holds %s: %s", not, got)
		}
	}
	s.Close()

	dst := filepath.Join(t.TempDir(), "restored")
	if err := Restore(bytes.NewReader(buf.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "logs", "part-1")); string(b) != "data of logs" {
		t.Errorf("restored logs/part-1 = %q", b)
	}
	r := openT(t, dst, nil)
	if got := r.Totals(); got.LogRecords != 7 || r.UncleanShutdown() {
		t.Errorf("restored store: totals %+v, unclean %v", got, r.UncleanShutdown())
	}
	r.Close()

	// Refusals: a directory in use, a path leaving the directory, a file that
	// is not a backup.
	if err := Restore(bytes.NewReader(buf.Bytes()), dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a used directory: %v", err)
	}
	for name, entry := range map[string]string{"escape": "../evil", "absolute": "/etc/evil", "no FORMAT": "meta.db"} {
		var evil bytes.Buffer
		tw := tar.NewWriter(&evil)
		tw.WriteHeader(&tar.Header{Name: entry, Size: 1, Mode: 0o644, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
		tw.Close()
		err := Restore(&evil, filepath.Join(t.TempDir(), "d"))
		if err == nil {
			t.Errorf("%s: restored", name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "evil")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a backup wrote outside its directory")
	}
}

// A backend that cannot snapshot makes Backup fail plainly.
func TestBackupNeedsSnapshots(t *testing.T) {
	var order []string
	s := openT(t, t.TempDir(), &Options{OpenTraces: func(string) (TracesBackend, error) { return &fakeBackend{name: "traces", order: &order}, nil }})
	defer s.Close()
	if err := s.Backup(context.Background(), io.Discard); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("backup with a backend that cannot snapshot: %v", err)
	}
}

type snapFunc func(context.Context, AddFunc) error

func (f snapFunc) Snapshot(ctx context.Context, add AddFunc) error { return f(ctx, add) }
