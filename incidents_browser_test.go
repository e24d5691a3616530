package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserIncident: a fault injected into a service's metrics (a level shift
// after three quiet days) opens an incident; on its page the evidence chart is
// drawn with the expected band; it is acknowledged, then its service silenced,
// and the silence is listed on the Silences page, where it is expired again.
// The Receivers page shows a receiver made there and its delivery log.
func TestBrowserIncident(t *testing.T) {
	ctx := browser(t)
	s := startServer(t, t.TempDir())
	defer s.stop()
	base := "http://" + s.http
	sendShiftedGauge(t, s)

	// The incident opens on the detector's next tick (every 10 s).
	row := chromedp.CSS(`[data-testid="open-incidents"] [data-testid="incident-row"]`)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.Click(chromedp.CSS(`[data-testid="nav-incidents"]`)),
		chromedp.WaitVisible(row)); err != nil { // the list refreshes itself every 5 s
		t.Fatalf("no open incident: %v\n%s", err, s.logs())
	}
	txt, err := chromedp.Run(ctx, chromedp.Text(row))
	if err != nil || !strings.Contains(txt, "Anomaly in "+anomalyMetric+" on e2e-shop") || !strings.Contains(txt, "open") {
		t.Fatalf("incident row %q %v", txt, err)
	}
	// The Overview lists it too.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="overview-incident-list"] [data-testid="incident-row"]`))); err != nil {
		t.Errorf("overview: %v", err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/incidents"), chromedp.EmulateViewport(1280, 1000),
		chromedp.Click(chromedp.CSS(`[data-testid="incident-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="evidence-chart"] .plot[data-drawn="1"][data-band="1"] canvas`))); err != nil {
		t.Fatalf("evidence chart with its band: %v", err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="incident-members"]`))); err != nil || !strings.Contains(txt, "expected") || !strings.Contains(txt, "queue=payments") {
		t.Errorf("members %q %v", txt, err)
	}

	// Acknowledge.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`[data-testid="ack-form"] input[name="by"]`), "ana"),
		chromedp.Click(chromedp.CSS(`[data-testid="ack-button"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-acked-by"]`))); err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	if st, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="incident-page-state"]`))); err != nil || st != "acknowledged" {
		t.Errorf("state after acknowledging: %q %v", st, err)
	}

	// Silence its service for an hour.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`[data-testid="silence-for"]`), "1h"),
		chromedp.Click(chromedp.CSS(`[data-testid="silence-button"]`))); err != nil {
		t.Fatalf("silence: %v", err)
	}
	// The form posts, then the page comes back with the silence in its timeline.
	if tl, err := waitText(ctx, `[data-testid="timeline"]`, func(s string) bool { return strings.Contains(s, "silenced {") }); err != nil || !strings.Contains(tl, `silenced {job="e2e-shop"}`) || !strings.Contains(tl, "acknowledged") {
		t.Fatalf("timeline %q %v", tl, err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/silences"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="active-silences"]`))); err != nil {
		t.Fatalf("silences page: %v", err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="active-silences"]`))); err != nil || !strings.Contains(txt, `job="e2e-shop"`) || !strings.Contains(txt, "silenced from incident 1") {
		t.Errorf("active silences %q %v", txt, err)
	}
	// The silence mutes the anomaly's alert (sent by the incident's tick).
	if _, err := waitText(ctx, `[data-testid="silence-muting"]`, func(s string) bool {
		chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-testid="active-silences"]`)))
		return s == "1"
	}); err != nil {
		t.Errorf("the silence mutes nothing: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="silence-expire"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="no-silences"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="expired-silences"]`))); err != nil {
		t.Errorf("expire: %v", err)
	}

	// A receiver made in the UI; a test notification to an address that refuses
	// shows up as a failed delivery.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="tab-receivers"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="no-receivers"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="receiver-form-name"]`), "ops"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="receiver-form-url"]`), "http://127.0.0.1:1/hook"),
		chromedp.Click(chromedp.CSS(`[data-testid="receiver-save"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="receiver-row"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="receiver-test"]`))); err != nil {
		t.Fatalf("receivers: %v", err)
	}
	// The page first says the receiver was saved; after the test it says how
	// the test went.
	if txt, err := waitText(ctx, `[data-testid="receiver-notice"]`, func(s string) bool { return strings.Contains(s, "Test notification") }); err != nil || !strings.Contains(txt, "failed") {
		t.Errorf("test notice %q %v", txt, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="receivers-page"]`)))
		if err == nil && strings.Contains(txt, "failed") && strings.Contains(txt, "Delivery log") && !strings.Contains(txt, "Nothing delivered yet") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery in the log: %q %v", txt, err)
		}
		chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-testid="receivers-page"]`)))
		time.Sleep(300 * time.Millisecond)
	}
}
