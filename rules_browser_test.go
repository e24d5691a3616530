package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const browserFileRules = `groups:
- name: browser-file
  interval: 1s
  rules:
  - alert: BrowserAlwaysFiring
    expr: vector(1)
    labels:
      severity: ticket
`

// line 3 of bad.yml holds a YAML error
const browserBadFile = `groups:
- name: bad
  rules: [
`

const browserBrokenGroup = `name: browser-made
rules:
- alert: Broken
  expr: sum(rate(x[5m]
`

const browserGoodGroup = `name: browser-made
interval: 1s
rules:
- alert: BrowserMade
  expr: vector(2) > 1
  annotations:
    summary: "made in the browser"
`

// TestBrowserRulesPage opens the Alert rules page: a rule of --rules-dir fires
// and is read-only, a refused file is shown with its line; in the editor a
// broken group is refused with its line number, a good one is saved, listed
// and evaluated, then deleted.
func TestBrowserRulesPage(t *testing.T) {
	ctx := browser(t)
	rulesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(rulesDir, "file.yml"), []byte(browserFileRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rulesDir, "bad.yml"), []byte(browserBadFile), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, t.TempDir(), "OUTPOST_RULES_DIR="+rulesDir)
	base := "http://" + s.http

	// reloadUntil reloads /rules until the text of sel satisfies ok.
	reloadUntil := func(sel string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		txt := ""
		for time.Now().Before(deadline) {
			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="rules-page"]`))); err != nil {
				t.Fatalf("open /rules: %v\n%s", err, s.logs())
			}
			var err error
			if txt, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel))); err == nil && ok(txt) {
				return txt
			}
			time.Sleep(300 * time.Millisecond)
		}
		t.Fatalf("%s = %q\n%s", sel, txt, s.logs())
		return ""
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.Click(chromedp.CSS(`[data-testid="nav-alerts"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rules-page"]`))); err != nil {
		t.Fatalf("nav alerts: %v", err)
	}
	reloadUntil(`[data-rule="BrowserAlwaysFiring"] [data-testid="rule-state"]`, func(s string) bool { return s == "firing" })
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="active-alerts"]`))); err != nil || !strings.Contains(txt, "BrowserAlwaysFiring") || !strings.Contains(txt, "severity=ticket") {
		t.Errorf("active alerts = %q %v", txt, err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-group="browser-file"] [data-testid="read-only"]`))); err != nil || !strings.Contains(txt, "read-only") {
		t.Errorf("file group not marked read-only: %q %v", txt, err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="rule-load-errors"]`))); err != nil || !strings.Contains(txt, "bad.yml") {
		t.Errorf("refused file not shown: %q %v", txt, err)
	}

	// A broken group is refused with its line; a good one is saved.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="new-group"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rule-editor"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="rule-group-name-input"]`), "browser-made"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="rule-body"]`), browserBrokenGroup),
		chromedp.Click(chromedp.CSS(`[data-testid="rule-validate"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rule-error"]`))); err != nil {
		t.Fatalf("validate a broken group: %v", err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="rule-errors"]`))); err != nil || !strings.Contains(txt, "line 4") || !strings.Contains(txt, "parse") {
		t.Errorf("errors of the broken group = %q %v", txt, err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="rule-gutter-error"]`))); err != nil || txt != "4" {
		t.Errorf("line marked in the gutter = %q %v", txt, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`[data-testid="rule-body"]`), browserGoodGroup),
		chromedp.Click(chromedp.CSS(`[data-testid="rule-validate"]`))); err != nil {
		t.Fatal(err)
	}
	if txt, err := waitText(ctx, `[data-testid="rule-status"]`, func(s string) bool { return strings.HasPrefix(s, "Valid") }); err != nil {
		t.Errorf("good group not valid: %q %v", txt, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`[data-testid="rule-preview-expr"]`), "vector(2) > 1"),
		chromedp.Click(chromedp.CSS(`[data-testid="rule-preview"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rule-preview-table"]`))); err != nil {
		t.Errorf("preview: %v", err)
	} else if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="rule-preview-table"]`))); err != nil || !strings.Contains(txt, "2") {
		t.Errorf("preview = %q %v", txt, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="rule-save"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rules-page"]`))); err != nil {
		t.Fatalf("save: %v\n%s", err, s.logs())
	}
	reloadUntil(`[data-rule="BrowserMade"] [data-testid="rule-state"]`, func(s string) bool { return s == "firing" })

	// The saved group is editable, and deleting it removes it from the list.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-group="browser-made"] [data-testid="edit-group"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rule-delete"]`))); err != nil {
		t.Fatalf("edit: %v", err)
	}
	if body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="rule-body"]').value`)); err != nil || !strings.Contains(body, "made in the browser") {
		t.Errorf("editor body = %q %v", body, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = function () { return true; }; true`)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.Click(chromedp.CSS(`[data-testid="rule-delete"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rules-page"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-group="browser-made"]`))); err != nil {
		t.Errorf("delete: %v", err)
	}
	s.stop()
}
