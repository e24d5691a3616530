package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// request sends a request to the server with optional basic auth and headers.
func request(t *testing.T, method, rawURL, user, password string, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestLoginsByDefault: without --auth the UI and query APIs need a login. The
// first start makes the admin's password and writes it, readable by the owner
// only, to the data directory, never to the log; programs use basic auth;
// pages redirect to the sign-in page; health checks, assets and OTLP ingest
// stay open; a cross-site form is refused; --admin-password replaces the
// password.
func TestLoginsByDefault(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data, "OUTPOST_AUTH=login")
	pwFile := filepath.Join(data, "initial-admin-password")
	b, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatalf("no initial password file: %v\n%s", err, s.logs())
	}
	pw := strings.TrimSpace(string(b))
	if st, _ := os.Stat(pwFile); len(pw) < 16 || st.Mode().Perm() != 0o600 {
		t.Fatalf("initial password %q, mode %v", pw, st.Mode())
	}
	if strings.Contains(s.logs(), pw) || !strings.Contains(s.logs(), "initial-admin-password") {
		t.Fatalf("the log shows the password, or does not say where it is:\n%s", s.logs())
	}
	base := "http://" + s.http
	q := base + "/api/v1/query?query=up"
	if resp := request(t, "GET", q, "", "", ""); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("query without a login: %s %v", resp.Status, resp.Header)
	}
	if resp := request(t, "GET", q, "admin", "wrong-password", ""); resp.StatusCode != 401 {
		t.Errorf("query with a wrong password: %s", resp.Status)
	}
	if resp := request(t, "GET", q, "admin", pw, ""); resp.StatusCode != 200 {
		t.Errorf("query with basic auth: %s", resp.Status)
	}
	if resp := request(t, "GET", base+"/logs?query=x", "", "", ""); resp.StatusCode != 303 || resp.Header.Get("Location") != "/login?next="+url.QueryEscape("/logs?query=x") {
		t.Errorf("page without a login: %s → %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, open := range []string{"/healthz", "/readyz", "/assets/app.css", "/login"} {
		if resp := request(t, "GET", base+open, "", "", ""); resp.StatusCode != 200 {
			t.Errorf("GET %s without a login: %s", open, resp.Status)
		}
	}
	sendSpans(t, s, 3) // OTLP ingest has its own token, not logins
	s.user, s.password = "admin", pw
	if st := s.status(); st.Ingested.Spans == 0 {
		t.Errorf("spans ingested = %d", st.Ingested.Spans)
	}
	// A form posted from another site is refused even with credentials.
	if resp := request(t, "POST", base+"/api/v1/incidents/1/notes", "admin", pw, `{"comment":"x"}`, "Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Errorf("cross-site POST: %s", resp.Status)
	}
	if resp := request(t, "POST", base+"/api/v1/incidents/1/notes", "admin", pw, `{"comment":"x"}`, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 404 {
		t.Errorf("same-origin POST about a missing incident: %s, want 404", resp.Status)
	}
	s.stop()

	s = startServer(t, data, "OUTPOST_AUTH=login", "OUTPOST_ADMIN_PASSWORD=correct horse battery")
	defer s.stop()
	base = "http://" + s.http
	if resp := request(t, "GET", base+"/api/v1/status", "admin", pw, ""); resp.StatusCode != 401 {
		t.Errorf("old password after --admin-password: %s", resp.Status)
	}
	if resp := request(t, "GET", base+"/api/v1/status", "admin", "correct horse battery", ""); resp.StatusCode != 200 {
		t.Errorf("new password: %s", resp.Status)
	}
	if _, err := os.Stat(pwFile); !os.IsNotExist(err) {
		t.Errorf("the initial password file outlived --admin-password: %v", err)
	}
	if strings.Contains(s.logs(), "correct horse battery") {
		t.Error("the log shows the password")
	}
}

// TestBrowserSignIn: a page opened without a session leads to the sign-in form;
// a wrong password is refused; the right one leads back to the page asked for;
// signing out leads to the form again.
func TestBrowserSignIn(t *testing.T) {
	ctx := browser(t)
	s := startServer(t, t.TempDir(), "OUTPOST_AUTH=login", "OUTPOST_ADMIN_PASSWORD=browser-secret")
	defer s.stop()
	base := "http://" + s.http
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/incidents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-page"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="login-password"]`), "nope-nope"),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-error"]`))); err != nil {
		t.Fatalf("sign-in form: %v\n%s", err, s.logs())
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`[data-testid="login-password"]`), "browser-secret"),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="incidents-page"]`))); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if u, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="signed-in-user"]`))); err != nil || u != "admin" {
		t.Errorf("signed-in user %q %v", u, err)
	}
	// Pages and their scripts work with the session: the Metrics page queries.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/graph?q=vector(1)"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="chart"] canvas`))); err != nil {
		t.Errorf("metrics page with a session: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="sign-out"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-page"]`)),
		chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-page"]`))); err != nil {
		t.Errorf("sign out: %v", err)
	}
}

// TestTLS: with a certificate, the UI, the APIs and OTLP/HTTP answer over TLS.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	s := startServer(t, filepath.Join(dir, "data"), "OUTPOST_TLS_CERT_FILE="+certFile, "OUTPOST_TLS_KEY_FILE="+keyFile)
	defer s.stop()
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + s.http + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = client.Post("https://"+s.otlpHTTP+"/v1/logs", "application/json", strings.NewReader(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"over tls"}}]}]}]}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP over TLS: %v %v", resp, err)
	}
	resp.Body.Close()
	// A plain-HTTP request to the TLS port gets Go's 400, not a page.
	if r, err := http.Get("http://" + s.http + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain HTTP served next to TLS")
		}
	}
	// Half a TLS configuration is refused at start.
	out, err := exec.Command(binary, "serve", "--data", t.TempDir(), "--tls-cert-file", certFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "go together") {
		t.Errorf("cert without key: %v %s", err, out)
	}
}
