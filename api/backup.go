package api

// POST /api/v1/admin/backup: a consistent copy of the whole data directory,
// streamed as tar while the server runs (outpost backup calls it).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"outpost/internal/snapshot"
)

// Backuper writes a backup of the data directory: *store.Store.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) error
}

// BackupAPI serves POST /api/v1/admin/backup.
type BackupAPI struct {
	b   Backuper
	log *slog.Logger
	now func() time.Time
}

// NewBackup returns the backup endpoint over b. log may be nil.
func NewBackup(b Backuper, log *slog.Logger) *BackupAPI {
	if log == nil {
		log = slog.Default()
	}
	return &BackupAPI{b: b, log: log, now: time.Now}
}

// Register mounts the endpoint with handle (API.Handle).
func (a *BackupAPI) Register(handle func(pattern string, h http.Handler)) {
	handle("POST /api/v1/admin/backup", http.HandlerFunc(a.backup))
}

// BackupStatusTrailer is the HTTP trailer that ends a backup: "ok", or why the
// stream before it is incomplete.
const BackupStatusTrailer = "X-Outpost-Backup-Status"

// backup streams the tar. Like the other admin endpoints it answers only
// requests from the loopback interface. The status code is sent before the
// copy starts, so a failure midway is told by the trailer.
func (a *BackupAPI) backup(w http.ResponseWriter, r *http.Request) {
	if !fromLoopback(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{"status": "error", "errorType": "forbidden", "error": "admin endpoints only answer requests from the loopback interface"})
		return
	}
	start := a.now()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="outpost-`+start.UTC().Format("20060102T150405Z")+`.tar"`)
	w.Header().Set("Trailer", BackupStatusTrailer)
	cw := &snapshot.CountingWriter{W: w}
	err := a.b.Backup(r.Context(), cw)
	if err != nil {
		w.Header().Set(BackupStatusTrailer, "failed: "+err.Error())
		if !errors.Is(err, context.Canceled) {
			a.log.Error("backup failed", "err", err, "bytes", cw.N)
		}
		return
	}
	w.Header().Set(BackupStatusTrailer, "ok")
	a.log.Info("backup written", "bytes", cw.N, "took_ms", a.now().Sub(start).Milliseconds())
}

// BackupMain is "outpost backup": it asks a running server for a backup and
// writes it to a file, which it renames into place only once the server said
// the backup is complete.
//
//	outpost backup [--url http://127.0.0.1:8080] [--out outpost-<time>.tar]
func BackupMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outpost backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("url", "http://127.0.0.1:8080", "the running Outpost (on this machine: admin endpoints answer loopback only); with logins, http://admin:PASSWORD@127.0.0.1:8080")
	out := fs.String("out", "", "the backup file (default outpost-<UTC time>.tar in the current directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("backup: unexpected arguments %q", fs.Args())
	}
	start := time.Now()
	if *out == "" {
		*out = "outpost-" + start.UTC().Format("20060102T150405Z") + ".tar"
	}
	u, err := url.Parse(strings.TrimRight(*server, "/") + "/api/v1/admin/backup")
	if err != nil {
		return fmt.Errorf("invalid --url %q: %w", *server, err)
	}
	resp, err := http.Post(u.String(), "", nil)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s answered %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(b)))
	}
	tmp := *out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot write the backup: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if st := resp.Trailer.Get(BackupStatusTrailer); st != "ok" {
			if st == "" {
				st = "the stream ended without a status"
			}
			err = errors.New("the server could not finish the backup: " + st)
		}
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write the backup: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes in %s\n", *out, n, time.Since(start).Round(time.Millisecond))
	return nil
}
