package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// House rules that are cheaper to test than to remember: every package says what
// it owns, and data flows one way (DESIGN.md, "The shape").
func TestHouseRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Doc        string
		Imports    []string
	}
	forbidden := map[string][]string{
		// The stores never import each other, the write path, or the edges.
		"outpost/tsdb":       {"outpost/store", "outpost/logindex", "outpost/traceindex", "outpost/ingest", "outpost/api", "outpost/ui", "outpost/detect"},
		"outpost/logindex":   {"outpost/store", "outpost/tsdb", "outpost/traceindex", "outpost/ingest", "outpost/api", "outpost/ui", "outpost/detect"},
		"outpost/traceindex": {"outpost/store", "outpost/tsdb", "outpost/logindex", "outpost/ingest", "outpost/api", "outpost/ui", "outpost/detect"},
		"outpost/store":      {"outpost/ingest", "outpost/api", "outpost/ui"},
		"outpost/ingest":     {"outpost/api", "outpost/ui"},
		"outpost/api":        {"outpost/ui", "outpost/ingest"},
		"outpost/demo":       {"outpost/store", "outpost/ingest", "outpost/api", "outpost/ui"},
		"outpost/detect":     {"outpost/store", "outpost/ingest", "outpost/api", "outpost/ui", "outpost/logindex", "outpost/traceindex"},
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment saying what it owns", p.ImportPath)
		}
		for _, imp := range p.Imports {
			if imp == "outpost/ui" && p.ImportPath != "outpost" {
				t.Errorf("%s imports outpost/ui: only main may", p.ImportPath)
			}
			for _, bad := range forbidden[rootOf(p.ImportPath)] {
				if imp == bad || strings.HasPrefix(imp, bad+"/") {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	if n < 8 {
		t.Errorf("go list found only %d packages", n)
	}
}

// rootOf maps outpost/tsdb/sub to outpost/tsdb.
func rootOf(path string) string {
	parts := strings.SplitN(path, "/", 3)
	if len(parts) >= 2 {
		return parts[0] + "/" + parts[1]
	}
	return path
}
