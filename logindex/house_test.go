package logindex

import (
	goparser "go/parser"
	gotoken "go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHouseRules checks that the package has its doc comment and imports none of
// the packages it must not depend on.
func TestHouseRules(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"outpost/store", "outpost/tsdb", "outpost/traceindex", "outpost/ui", "outpost/api", "outpost/ingest", "net/http"}
	doc := false
	fset := gotoken.NewFileSet()
	for _, f := range files {
		af, err := goparser.ParseFile(fset, f, nil, goparser.ImportsOnly|goparser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if af.Doc != nil && strings.HasPrefix(af.Doc.Text(), "Package logindex ") {
			doc = true
		}
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if p == bad || strings.HasPrefix(p, bad+"/") {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
	if !doc {
		t.Error("no file has a \"Package logindex ...\" doc comment")
	}
}
