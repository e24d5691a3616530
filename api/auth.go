package api

// Logins: the UI and the query APIs need one (DESIGN: secure by default). People
// sign in on /login and get a session cookie; programs (Grafana's data sources,
// amtool, curl) send HTTP basic auth. Unsafe methods from a browser must come
// from Outpost's own pages (net/http's CrossOriginProtection: Sec-Fetch-Site or
// Origin), which is the CSRF protection of every form and script.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"outpost/internal/atomicfile"
)

// AuthOptions configure logins. Every zero field means the default stated on it.
type AuthOptions struct {
	// Dir holds auth.json (the session key and the users' password hashes) and,
	// after the first start without AdminPassword, initial-admin-password.
	// Required.
	Dir string
	// AdminPassword, if set, becomes the password of the user "admin" at start.
	// Zero: the stored one; at the first start a random one is made, logged once
	// and written to Dir/initial-admin-password (readable by the owner only).
	AdminPassword string
	// SessionTTL is how long a login lasts. Zero: 7 days.
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure (set it when serving HTTPS).
	SecureCookies bool
	// Public are path prefixes served without a login. Zero: none (the login
	// page itself and /healthz, /readyz, /assets/ are always public).
	Public []string
	// WithUser, if set, is given each authenticated request and the user's name
	// and returns the request to serve (e.g. with the user in its context).
	WithUser func(r *http.Request, user string) *http.Request
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// Logger receives sign-ins, refusals and the first start's password notice.
	// Zero: slog.Default().
	Logger *slog.Logger
}

// Auth checks logins. Its methods are safe for concurrent use.
type Auth struct {
	opts AuthOptions
	log  *slog.Logger
	csrf *http.CrossOriginProtection

	mu    sync.Mutex
	state authState
	// cache of verified basic-auth credentials (bcrypt is slow on purpose):
	// sha256(user:password) → user, cleared when passwords change.
	verified map[[32]byte]string
	fails    map[string]failures // by client address
}

// Failed sign-ins are throttled per client address: after maxFailures
// failures within failureWindow of the first, the address gets no password
// check until the window has passed (429 with Retry-After). Besides slowing
// guessing, this keeps a flood of guesses from taking the CPU, since each check
// costs tens of milliseconds of bcrypt. A proxy in front makes every client
// one address: then they share the allowance.
const (
	maxFailures   = 10
	failureWindow = time.Minute
	maxTracked    = 10000 // addresses remembered at most
)

type failures struct {
	n     int
	since time.Time
}

// ErrWrongPassword is SignIn's answer to a wrong user name or password.
var ErrWrongPassword = errors.New("wrong user name or password")

// ThrottledError is SignIn's answer while the client's address has failed too
// often.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins from this address; try again in %s", e.Wait.Round(time.Second))
}

// RetryAfter is how long to wait before trying again.
func (e *ThrottledError) RetryAfter() time.Duration { return e.Wait }

// clientAddr is the address failures are counted by: the remote IP.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// throttled says how long addr must still wait, zero if it may try.
func (a *Auth) throttled(addr string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.fails[addr]
	if !ok || f.n < maxFailures {
		return 0
	}
	return max(0, f.since.Add(failureWindow).Sub(a.opts.Now()))
}

// attempt records the outcome of a password check from addr.
func (a *Auth) attempt(addr string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ok {
		delete(a.fails, addr)
		return
	}
	now := a.opts.Now()
	f := a.fails[addr]
	if now.Sub(f.since) >= failureWindow {
		f = failures{since: now}
	}
	f.n++
	a.fails[addr] = f
	if len(a.fails) > maxTracked {
		for k, f := range a.fails {
			if now.Sub(f.since) >= failureWindow {
				delete(a.fails, k)
			}
		}
		if len(a.fails) > maxTracked { // a flood from many addresses: start over
			clear(a.fails)
		}
	}
}

type authState struct {
	Version int               `json:"version"`
	Key     string            `json:"session_key"` // hex, 32 bytes
	Users   map[string]string `json:"users"`       // name → bcrypt hash
}

const (
	authFile      = "auth.json"
	initialPWFile = "initial-admin-password"
	sessionCookie = "outpost_session"
	adminUser     = "admin"
)

// OpenAuth loads Dir/auth.json, creating it (with a random session key and the
// user admin) at the first start.
func OpenAuth(opts AuthOptions) (*Auth, error) {
	if opts.Dir == "" {
		return nil, errors.New("cannot open logins: no directory")
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 7 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &Auth{opts: opts, log: opts.Logger, csrf: http.NewCrossOriginProtection(), verified: map[[32]byte]string{}, fails: map[string]failures{}}
	a.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused: forms and scripts of other sites cannot change Outpost", http.StatusForbidden)
	}))
	path := filepath.Join(opts.Dir, authFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &a.state); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		if a.state.Version != 1 {
			return nil, fmt.Errorf("cannot read %s: unknown version %d", path, a.state.Version)
		}
		if k, err := hex.DecodeString(a.state.Key); err != nil || len(k) != 32 {
			return nil, fmt.Errorf("cannot read %s: bad session key", path)
		}
	case errors.Is(err, os.ErrNotExist):
		a.state = authState{Version: 1, Key: hex.EncodeToString(randomBytes(32)), Users: map[string]string{}}
		if opts.AdminPassword == "" {
			pw := base64.RawURLEncoding.EncodeToString(randomBytes(15))
			if err := a.setPassword(adminUser, pw); err != nil {
				return nil, err
			}
			pwPath := filepath.Join(opts.Dir, initialPWFile)
			if err := writeSecret(pwPath, []byte(pw+"\n")); err != nil {
				return nil, err
			}
			a.log.Warn("first start: sign in to the UI as admin with the password in "+pwPath+", or set --admin-password", "user", adminUser, "password_file", pwPath)
		}
	default:
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if opts.AdminPassword != "" {
		if err := a.setPassword(adminUser, opts.AdminPassword); err != nil {
			return nil, err
		}
		os.Remove(filepath.Join(opts.Dir, initialPWFile))
	}
	if err := a.save(); err != nil {
		return nil, err
	}
	return a, nil
}

// dummyHash is a bcrypt hash of nothing anyone knows, compared against when
// the user does not exist.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword(randomBytes(16), bcrypt.DefaultCost)
	return h
})

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// setPassword stores the bcrypt hash of password for user.
func (a *Auth) setPassword(user, password string) error {
	if len(password) < 8 {
		return fmt.Errorf("cannot set the password of %s: it needs at least 8 characters", user)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("cannot set the password of %s: %w", user, err)
	}
	a.mu.Lock()
	a.state.Users[user] = string(h)
	clear(a.verified)
	a.mu.Unlock()
	return nil
}

func (a *Auth) save() error {
	a.mu.Lock()
	b, err := json.MarshalIndent(a.state, "", "  ")
	a.mu.Unlock()
	if err != nil {
		return err
	}
	return writeSecret(filepath.Join(a.opts.Dir, authFile), b)
}

// writeSecret writes a file only its owner can read, durably.
func writeSecret(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, b, 0o600)
}

// check verifies a user's password.
func (a *Auth) check(user, password string) bool {
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	a.mu.Lock()
	if u, ok := a.verified[sum]; ok && u == user {
		a.mu.Unlock()
		return true
	}
	h, ok := a.state.Users[user]
	a.mu.Unlock()
	if !ok {
		// Spend the same time as for a real user, so names cannot be probed.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.verified) > 1000 {
		clear(a.verified)
	}
	a.verified[sum] = user
	a.mu.Unlock()
	return true
}

// session cookie: base64url(user) "." expiry (Unix s) "." hex(HMAC-SHA256).
func (a *Auth) sign(payload string) string {
	key, _ := hex.DecodeString(a.state.Key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

func (a *Auth) newSession(user string) *http.Cookie {
	exp := a.opts.Now().Add(a.opts.SessionTTL)
	payload := base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + strconv.FormatInt(exp.Unix(), 10)
	return &http.Cookie{
		Name: sessionCookie, Value: payload + "." + a.sign(payload), Path: "/", Expires: exp,
		HttpOnly: true, Secure: a.opts.SecureCookies, SameSite: http.SameSiteLaxMode,
	}
}

// sessionUser is the user of a valid session cookie, or "".
func (a *Auth) sessionUser(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return ""
	}
	payload, sig := c.Value[:i], c.Value[i+1:]
	if subtle.ConstantTimeCompare([]byte(sig), []byte(a.sign(payload))) != 1 {
		return ""
	}
	u64, expS, ok := strings.Cut(payload, ".")
	if !ok {
		return ""
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || a.opts.Now().Unix() >= exp {
		return ""
	}
	u, err := base64.RawURLEncoding.DecodeString(u64)
	if err != nil {
		return ""
	}
	a.mu.Lock()
	_, known := a.state.Users[string(u)]
	a.mu.Unlock()
	if !known {
		return ""
	}
	return string(u)
}

// SignIn checks a user's password and, if it is right, sets the session
// cookie on w. Otherwise it returns ErrWrongPassword, or a *ThrottledError
// (without checking) while the client's address has failed too often.
func (a *Auth) SignIn(w http.ResponseWriter, r *http.Request, user, password string) error {
	if err := a.verify(r, user, password); err != nil {
		a.log.Warn("sign-in refused", "user", user, "remote", r.RemoteAddr, "err", err)
		return err
	}
	http.SetCookie(w, a.newSession(user))
	a.log.Info("signed in", "user", user, "remote", r.RemoteAddr)
	return nil
}

// verify is check behind the per-address throttle.
func (a *Auth) verify(r *http.Request, user, password string) error {
	addr := clientAddr(r)
	if wait := a.throttled(addr); wait > 0 {
		return &ThrottledError{Wait: wait}
	}
	ok := a.check(user, password)
	a.attempt(addr, ok)
	if !ok {
		return ErrWrongPassword
	}
	return nil
}

// SignOut clears the session cookie.
func (a *Auth) SignOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// isPublic tells the paths served without a login.
func (a *Auth) isPublic(path string) bool {
	switch path {
	case "/login", "/healthz", "/readyz":
		return true
	}
	if strings.HasPrefix(path, "/assets/") {
		return true
	}
	for _, p := range a.opts.Public {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// isProgrammatic tells the paths whose callers are programs: they get 401 with
// a basic-auth challenge rather than a redirect to the login page.
func isProgrammatic(path string) bool {
	for _, p := range []string{"/api/", "/metrics", "/debug/", "/federate"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Wrap returns next behind logins and cross-origin protection: a public path
// is served as is; otherwise a valid session cookie or basic auth is needed,
// else an API path answers 401 and a page redirects to /login?next=….
func (a *Auth) Wrap(next http.Handler) http.Handler {
	protected := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.isPublic(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		user := a.sessionUser(r)
		if user == "" {
			if u, p, ok := r.BasicAuth(); ok {
				var throttled *ThrottledError
				switch err := a.verify(r, u, p); {
				case err == nil:
					user = u
				case errors.As(err, &throttled):
					w.Header().Set("Retry-After", strconv.Itoa(int(throttled.Wait.Seconds()+0.999)))
					writeJSON(w, http.StatusTooManyRequests, map[string]string{"status": "error", "errorType": "unauthorized", "error": err.Error()})
					return
				}
			}
		}
		if user == "" {
			if isProgrammatic(r.URL.Path) || r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("WWW-Authenticate", `Basic realm="Outpost", charset="UTF-8"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "error", "errorType": "unauthorized", "error": "sign in: send HTTP basic auth, or a session cookie from /login"})
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if a.opts.WithUser != nil {
			r = a.opts.WithUser(r, user)
		}
		next.ServeHTTP(w, r)
	})
	return a.csrf.Handler(protected)
}
