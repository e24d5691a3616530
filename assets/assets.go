// Package assets owns the static files of the web UI: Outpost's own CSS and
// JavaScript, and the vendored htmx and uPlot (with their licences, refreshed from
// npm by refresh.sh). They are embedded in the binary and served from memory.
package assets

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed app.css app.js metrics.js traces.js logs.js rules.js incidents.js vendor
var files embed.FS

// FS is the embedded file tree: app.css, app.js, metrics.js, traces.js, logs.js, rules.js, incidents.js, vendor/….
var FS fs.FS = files

// Handler serves the assets; mount it with http.StripPrefix. Files are immutable
// for one build, so clients may cache them for a day.
func Handler() http.Handler {
	fsrv := http.FileServer(http.FS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	})
}
