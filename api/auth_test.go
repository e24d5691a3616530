package api

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC)
	var seen string
	opts := AuthOptions{
		Dir: dir, Now: func() time.Time { return now }, SessionTTL: time.Hour, Logger: slog.New(slog.DiscardHandler),
		WithUser: func(r *http.Request, u string) *http.Request { seen = u; return r },
	}
	a, err := OpenAuth(opts)
	if err != nil {
		t.Fatal(err)
	}
	pwb, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(string(pwb))
	for _, f := range []string{"auth.json", "initial-admin-password"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	do := func(method, path string, mod func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if mod != nil {
			mod(req)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	for _, tc := range []struct {
		method, path string
		mod          func(*http.Request)
		code         int
	}{
		{"GET", "/healthz", nil, 200},
		{"GET", "/assets/app.css", nil, 200},
		{"GET", "/login", nil, 200},
		{"GET", "/api/v1/query", nil, 401},
		{"GET", "/metrics", nil, 401},
		{"GET", "/graph", nil, 303},
		{"POST", "/incidents/1/resolve", nil, 401},
		{"GET", "/api/v1/query", basic("admin", pw), 200},
		{"GET", "/api/v1/query", basic("admin", pw+"x"), 401},
		{"GET", "/api/v1/query", basic("root", pw), 401},
		{"POST", "/api/v1/x", func(r *http.Request) { r.SetBasicAuth("admin", pw); r.Header.Set("Sec-Fetch-Site", "cross-site") }, 403},
		{"POST", "/api/v1/x", func(r *http.Request) { r.SetBasicAuth("admin", pw); r.Header.Set("Origin", "https://evil.example") }, 403},
		{"POST", "/api/v1/x", func(r *http.Request) { r.SetBasicAuth("admin", pw); r.Header.Set("Sec-Fetch-Site", "same-origin") }, 200},
	} {
		if rec := do(tc.method, tc.path, tc.mod); rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
	if seen != "admin" {
		t.Errorf("WithUser saw %q", seen)
	}

	// Sessions: signing in sets a cookie that works until it expires; a
	// tampered one does not.
	rec := httptest.NewRecorder()
	if err := a.SignIn(rec, httptest.NewRequest("POST", "/login", nil), "admin", "nope"); err != ErrWrongPassword {
		t.Fatalf("signing in with a wrong password: %v", err)
	}
	if err := a.SignIn(rec, httptest.NewRequest("POST", "/login", nil), "admin", pw); err != nil {
		t.Fatalf("cannot sign in: %v", err)
	}
	cookie := rec.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure {
		t.Errorf("cookie %+v", cookie)
	}
	withCookie := func(c *http.Cookie) func(*http.Request) { return func(r *http.Request) { r.AddCookie(c) } }
	if rec := do("GET", "/graph", withCookie(cookie)); rec.Code != 200 {
		t.Errorf("with a session: %d", rec.Code)
	}
	bad := *cookie
	bad.Value = strings.Replace(bad.Value, "YWRtaW4", "cm9vdA", 1) // admin → root
	if rec := do("GET", "/api/v1/query", withCookie(&bad)); rec.Code != 401 {
		t.Errorf("tampered session: %d", rec.Code)
	}
	now = now.Add(time.Hour)
	if rec := do("GET", "/api/v1/query", withCookie(cookie)); rec.Code != 401 {
		t.Errorf("expired session: %d", rec.Code)
	}

	// Reopening keeps the key and the password; AdminPassword replaces it and
	// removes the first start's file; a short one is refused.
	if _, err := OpenAuth(AuthOptions{Dir: dir, AdminPassword: "short"}); err == nil {
		t.Error("a 5-character password was accepted")
	}
	b, err := OpenAuth(AuthOptions{Dir: dir, AdminPassword: "a much longer one"})
	if err != nil {
		t.Fatal(err)
	}
	if b.check("admin", pw) || !b.check("admin", "a much longer one") {
		t.Error("AdminPassword did not replace the password")
	}
	if _, err := os.Stat(filepath.Join(dir, "initial-admin-password")); !os.IsNotExist(err) {
		t.Errorf("initial password file kept: %v", err)
	}
	if b.state.Key != a.state.Key {
		t.Error("the session key changed on reopening")
	}
}

// Failed sign-ins are throttled per client address, for the form and for
// basic auth alike; other addresses are not affected, the throttle ends after
// the window, and a success clears the count.
func TestSignInThrottle(t *testing.T) {
	now := time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC)
	a, err := OpenAuth(AuthOptions{Dir: t.TempDir(), AdminPassword: "right password", Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	from := func(addr string) *http.Request {
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = addr
		return r
	}
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	basic := func(addr, pw string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/api/v1/query", nil)
		r.RemoteAddr = addr
		r.SetBasicAuth("admin", pw)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	for i := 0; i < maxFailures; i++ {
		if err := a.SignIn(httptest.NewRecorder(), from("192.0.2.1:5000"), "admin", "guess"); err != ErrWrongPassword {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// Now even the right password is not checked from that address.
	var throttled *ThrottledError
	if err := a.SignIn(httptest.NewRecorder(), from("192.0.2.1:6000"), "admin", "right password"); !errors.As(err, &throttled) || throttled.RetryAfter() != failureWindow {
		t.Fatalf("after %d failures: %v", maxFailures, err)
	}
	if rec := basic("192.0.2.1:7000", "right password"); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "60" {
		t.Errorf("basic auth while throttled: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := basic("192.0.2.2:7000", "right password"); rec.Code != 200 {
		t.Errorf("another address: %d", rec.Code)
	}
	now = now.Add(failureWindow)
	if err := a.SignIn(httptest.NewRecorder(), from("192.0.2.1:5000"), "admin", "right password"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// The success cleared the count: failures start again from zero.
	for i := 0; i < maxFailures-1; i++ {
		if rec := basic("192.0.2.1:7000", "guess"); rec.Code != 401 {
			t.Fatalf("failure %d after a success: %d", i, rec.Code)
		}
	}
	if rec := basic("192.0.2.1:7000", "right password"); rec.Code != 200 {
		t.Errorf("right password before the limit: %d", rec.Code)
	}
}
