package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser returns a headless Chromium context, or skips the test when no Chromium
// is installed — unless OUTPOST_E2E=1, where browser tests are required.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("OUTPOST_E2E") == "1" {
			t.Fatal("OUTPOST_E2E=1 but no Chromium found: install it (apt-get install -y chromium)")
		}
		t.Skip("no Chromium found; browser tests skipped (they are required with OUTPOST_E2E=1)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// waitText polls the text of sel until it satisfies ok or the context ends. A
// failed read (the page is navigating, the node was just replaced) is retried.
func waitText(ctx context.Context, sel string, ok func(string) bool) (string, error) {
	for {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil && ok(txt) {
			return txt, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return txt, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestBrowserOverviewShowsCountsChanging(t *testing.T) {
	ctx := browser(t)
	s := startServer(t, t.TempDir())
	base := "http://" + s.http
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="overview-stats"]`))); err != nil {
		t.Fatalf("open Overview: %v\n%s", err, s.logs())
	}
	if txt, err := waitText(ctx, `[data-testid="total-spans"]`, func(s string) bool { return s == "0" }); err != nil {
		t.Fatalf("spans before sending = %q: %v", txt, err)
	}
	if noSvc, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="no-services"]`))); err != nil || !strings.Contains(noSvc, "OTEL_EXPORTER_OTLP_ENDPOINT") {
		t.Errorf("empty Overview does not tell how to send data: %q %v", noSvc, err)
	}

	sendSpans(t, s, 600) // 1,200 spans: 600 over gRPC, 600 over HTTP
	// The page refreshes itself (no reload here): the count and the services appear.
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if txt, err := waitText(wctx, `[data-testid="total-spans"]`, func(s string) bool { return s == "1,200" }); err != nil {
		t.Fatalf("spans on the page = %q, want 1,200: %v", txt, err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="services"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rows, "e2e-grpc") || !strings.Contains(rows, "e2e-http") {
		t.Errorf("services table = %q", rows)
	}

	// Every navigation link leads to a page; unbuilt ones say so plainly.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="nav-metrics"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="metrics-page"]`))); err != nil {
		t.Errorf("nav metrics: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="nav-logs"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="logs-page"]`))); err != nil {
		t.Errorf("nav logs: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="nav-traces"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="traces-page"]`))); err != nil {
		t.Errorf("nav traces: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="nav-incidents"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="incidents-page"]`))); err != nil {
		t.Errorf("nav incidents: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="nav-settings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="settings-page"]`))); err != nil {
		t.Errorf("nav settings: %v", err)
	} else if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="settings"]`))); err != nil || !strings.Contains(txt, "--retention") {
		t.Errorf("settings table %q %v", txt, err)
	}
	s.stop()
}
