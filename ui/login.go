package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Authenticator signs people in and out: the API's *Auth.
type Authenticator interface {
	// SignIn returns nil when signed in, else what to tell the person (an error
	// with a RetryAfter() method when they must wait).
	SignIn(w http.ResponseWriter, r *http.Request, user, password string) error
	SignOut(w http.ResponseWriter, r *http.Request)
}

type userKey struct{}

// WithUser returns ctx carrying the signed-in user's name, which the layout
// shows with a sign-out button.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// LoginPages are /login and /logout.
type LoginPages struct {
	h    *Handler
	auth Authenticator
}

// NewLoginPages returns the sign-in and sign-out pages over auth.
func NewLoginPages(h *Handler, auth Authenticator) *LoginPages { return &LoginPages{h: h, auth: auth} }

// Register mounts the pages with handle (Handler.Handle).
func (p *LoginPages) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /login", http.HandlerFunc(p.form))
	handle("POST /login", http.HandlerFunc(p.signIn))
	handle("POST /logout", http.HandlerFunc(p.signOut))
}

// localPath keeps next only if it is a path of this server (no open redirect).
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (p *LoginPages) form(w http.ResponseWriter, r *http.Request) {
	p.h.renderStandalone(w, r, http.StatusOK, LoginPage(localPath(r.URL.Query().Get("next")), "", p.h.opts.Version))
}

func (p *LoginPages) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "The form could not be read.", Err: err})
		return
	}
	next := localPath(r.PostForm.Get("next"))
	if err := p.auth.SignIn(w, r, strings.TrimSpace(r.PostForm.Get("user")), r.PostForm.Get("password")); err != nil {
		var wait interface{ RetryAfter() time.Duration }
		if errors.As(err, &wait) {
			secs := int(wait.RetryAfter().Seconds() + 0.999)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			p.h.renderStandalone(w, r, http.StatusTooManyRequests, LoginPage(next, fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d s.", secs), p.h.opts.Version))
			return
		}
		p.h.renderStandalone(w, r, http.StatusUnauthorized, LoginPage(next, "Wrong user name or password.", p.h.opts.Version))
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (p *LoginPages) signOut(w http.ResponseWriter, r *http.Request) {
	p.auth.SignOut(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
