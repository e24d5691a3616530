package ui

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"outpost/detect/notify"
)

// The Silences and Receivers pages over a real notifier: a silence made in the
// form mutes a matching alert and is expired again; a bad one is refused with
// the form kept; a receiver made in the form is listed, tested (its failure in
// the delivery log) and deleted.
func TestNotifyPages(t *testing.T) {
	now := time.Now()
	n, err := notify.New(notify.Options{Dir: t.TempDir(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	h := New(fakeStats{}, Options{Version: "v1", Now: time.Now})
	NewNotifyPages(h, n).Register(h.Handle)
	do := func(method, path string, form url.Values, wantCode int) string {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		if form != nil {
			req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != wantCode {
			t.Fatalf("%s %s: %d, want %d\n%s", method, path, rec.Code, wantCode, rec.Body)
		}
		return rec.Body.String()
	}
	if body := do("GET", "/silences", nil, 200); !strings.Contains(body, `data-testid="no-silences"`) || !strings.Contains(body, `class="active" data-testid="tab-silences"`) {
		t.Fatalf("empty silences page:\n%s", body)
	}
	n.Send(notify.Alert{Labels: map[string]string{"alertname": "Down", "job": "checkout"}, StartsAt: now})

	body := do("POST", "/silences", url.Values{"matchers": {`{job="checkout"`}, "for": {"1h"}, "comment": {"<b>deploy</b>"}}, 400)
	if !strings.Contains(body, "do not parse") || !strings.Contains(body, `value="&lt;b&gt;deploy&lt;/b&gt;"`) {
		t.Fatalf("refused silence:\n%s", body)
	}
	do("POST", "/silences", url.Values{"matchers": {`{job="checkout"}`}, "for": {"1h"}}, 400) // no comment
	do("POST", "/silences", url.Values{"matchers": {`{job="checkout"}`}, "for": {"1h"}, "created_by": {"ana"}, "comment": {"deploy"}}, 303)
	body = do("GET", "/silences", nil, 200)
	if !strings.Contains(body, `job=&#34;checkout&#34;`) || !strings.Contains(body, `data-testid="silence-muting">1<`) || !strings.Contains(body, "ana") {
		t.Fatalf("silences page:\n%s", body)
	}
	id := n.Silences()[0].ID
	do("POST", "/silences/"+id+"/expire", url.Values{}, 303)
	do("POST", "/silences/"+id+"/expire", url.Values{}, 409)
	do("POST", "/silences/nope/expire", url.Values{}, 404)
	if body := do("GET", "/silences", nil, 200); !strings.Contains(body, `data-testid="expired-silences"`) || !strings.Contains(body, `data-testid="no-silences"`) {
		t.Fatalf("after expiring:\n%s", body)
	}

	if body := do("GET", "/receivers", nil, 200); !strings.Contains(body, `data-testid="no-receivers"`) || !strings.Contains(body, `data-testid="no-deliveries"`) {
		t.Fatalf("empty receivers page:\n%s", body)
	}
	do("POST", "/receivers", url.Values{"name": {"ops"}, "kind": {"pager"}}, 400)
	do("POST", "/receivers", url.Values{"name": {"ops"}, "kind": {"webhook"}, "url": {"http://127.0.0.1:1/hook"}, "matchers": {`{severity="critical"}`}, "send_resolved": {"1"}}, 303)
	body = do("GET", "/receivers", nil, 200)
	if !strings.Contains(body, `data-testid="receiver-name">ops<`) || !strings.Contains(body, `data-testid="receiver-delete"`) {
		t.Fatalf("receivers page:\n%s", body)
	}
	do("POST", "/receivers/ops/test", url.Values{}, 303)
	do("POST", "/receivers/nobody/test", url.Values{}, 404)
	if body := do("GET", "/receivers", nil, 200); !strings.Contains(body, `data-testid="delivery-row"`) || !strings.Contains(body, "failed") {
		t.Fatalf("no failed delivery listed:\n%s", body)
	}
	do("POST", "/receivers/ops/delete", url.Values{}, 303)
	do("POST", "/receivers/ops/delete", url.Values{}, 404)
}
