package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"outpost/detect/notify"
)

// NotifySource is what the Silences and Receivers pages read and change:
// *notify.Notifier.
type NotifySource interface {
	Silences() []notify.Silence
	PutSilence(s notify.Silence) (string, error)
	ExpireSilence(id string) error
	Alerts() []notify.AlertStatus
	Receivers() []notify.ReceiverStatus
	PutReceiver(r notify.UIReceiver) error
	DeleteReceiver(name string) error
	Deliveries(limit int) []notify.Delivery
	Test(ctx context.Context, receiverName string) error
}

// NotifyPages are the Silences page and the Receivers page (receivers, their
// delivery log, and a form for receivers made in the UI). Both sit under the
// Alerts navigation entry, beside the rules.
type NotifyPages struct {
	h   *Handler
	src NotifySource
}

// NewNotifyPages returns the pages drawn inside h's layout.
func NewNotifyPages(h *Handler, src NotifySource) *NotifyPages {
	return &NotifyPages{h: h, src: src}
}

// Register mounts the pages with handle (Handler.Handle).
func (p *NotifyPages) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /silences", http.HandlerFunc(p.silences))
	handle("POST /silences", http.HandlerFunc(p.createSilence))
	handle("POST /silences/{id}/expire", http.HandlerFunc(p.expireSilence))
	handle("GET /receivers", http.HandlerFunc(p.receivers))
	handle("POST /receivers", http.HandlerFunc(p.saveReceiver))
	handle("POST /receivers/{name}/test", http.HandlerFunc(p.testReceiver))
	handle("POST /receivers/{name}/delete", http.HandlerFunc(p.deleteReceiver))
}

// SilencesData is the Silences page.
type SilencesData struct {
	Active, Expired []SilenceRow
	Form            SilenceForm
	Error           string
}

// SilenceRow is one silence.
type SilenceRow struct {
	ID, Matchers, State, Starts, Ends, CreatedBy, Comment string
	Silenced                                              int // alerts it mutes now
}

// SilenceForm is what the new-silence form holds (kept when it is refused).
type SilenceForm struct{ Matchers, For, CreatedBy, Comment string }

func (p *NotifyPages) silencesData(form SilenceForm, errMsg string) SilencesData {
	now := p.h.opts.Now()
	muted := map[string]int{}
	for _, a := range p.src.Alerts() {
		for _, id := range a.SilencedBy {
			muted[id]++
		}
	}
	d := SilencesData{Form: form, Error: errMsg}
	for _, s := range p.src.Silences() {
		row := SilenceRow{
			ID: s.ID, Matchers: s.Matchers.String(), State: s.Status.State,
			Starts: s.StartsAt.UTC().Format("2006-01-02 15:04 UTC"), Ends: s.EndsAt.UTC().Format("2006-01-02 15:04 UTC"),
			CreatedBy: s.CreatedBy, Comment: s.Comment, Silenced: muted[s.ID],
		}
		if s.Status.State == notify.SilenceStateExpired {
			d.Expired = append(d.Expired, row)
		} else {
			if s.EndsAt.After(now) {
				row.Ends += " (in " + formatDuration(s.EndsAt.Sub(now)) + ")"
			}
			d.Active = append(d.Active, row)
		}
	}
	return d
}

func (p *NotifyPages) silences(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form := SilenceForm{Matchers: q.Get("matchers"), For: "2h", Comment: q.Get("comment")}
	p.h.Page(w, r, "Silences", "alerts", SilencesBody(p.silencesData(form, "")))
}

func (p *NotifyPages) createSilence(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "The form could not be read.", Err: err})
		return
	}
	form := SilenceForm{
		Matchers: strings.TrimSpace(r.PostForm.Get("matchers")), For: strings.TrimSpace(r.PostForm.Get("for")),
		CreatedBy: strings.TrimSpace(r.PostForm.Get("created_by")), Comment: strings.TrimSpace(r.PostForm.Get("comment")),
	}
	refuse := func(msg string) {
		p.h.render(w, r, http.StatusBadRequest, Layout("Silences", "alerts", p.h.opts.Version), SilencesBody(p.silencesData(form, msg)))
	}
	ms, err := notify.ParseMatchers(form.Matchers)
	if err != nil || len(ms) == 0 {
		msg := "Give at least one matcher, such as {job=\"checkout\"}."
		if err != nil {
			msg = "The matchers do not parse: " + err.Error()
		}
		refuse(msg)
		return
	}
	d, err := parseRange(form.For)
	if err != nil || d <= 0 {
		refuse("Silence for how long? Give a duration such as 2h or 1d.")
		return
	}
	if form.CreatedBy == "" {
		form.CreatedBy = "anonymous"
	}
	if form.Comment == "" {
		refuse("Say why: a silence needs a comment.")
		return
	}
	now := p.h.opts.Now()
	if _, err := p.src.PutSilence(notify.Silence{Matchers: ms, StartsAt: now, EndsAt: now.Add(d), CreatedBy: form.CreatedBy, Comment: form.Comment}); err != nil {
		refuse("The silence was refused: " + err.Error())
		return
	}
	http.Redirect(w, r, "/silences", http.StatusSeeOther)
}

func (p *NotifyPages) expireSilence(w http.ResponseWriter, r *http.Request) {
	if err := p.src.ExpireSilence(r.PathValue("id")); err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, notify.ErrSilenceNotFound):
			code = http.StatusNotFound
		case errors.Is(err, notify.ErrSilenceExpired):
			code = http.StatusConflict
		}
		p.h.Fail(w, r, &Error{Code: code, UserMessage: "The silence could not be expired: " + err.Error(), Err: err})
		return
	}
	http.Redirect(w, r, "/silences", http.StatusSeeOther)
}

// ReceiversData is the Receivers page.
type ReceiversData struct {
	Receivers  []ReceiverRow
	Deliveries []DeliveryRow
	Form       ReceiverForm
	Error      string
	Notice     string
}

// ReceiverRow is one receiver.
type ReceiverRow struct {
	Name, Kinds, Source, LastDelivery, LastSuccess, LastError string
	Editable                                                  bool
}

// DeliveryRow is one delivery attempt.
type DeliveryRow struct {
	Time, Receiver, Integration, Status, Alerts, Attempt, Took, Error, GroupKey string
	OK                                                                          bool
}

// ReceiverForm is the form for a receiver made in the UI.
type ReceiverForm struct {
	Name, Kind, URL, Channel, To, From, Smarthost, Matchers, GroupBy string
	SendResolved                                                     bool
}

func (p *NotifyPages) receiversData(form ReceiverForm, errMsg, notice string) ReceiversData {
	when := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	d := ReceiversData{Form: form, Error: errMsg, Notice: notice}
	for _, rs := range p.src.Receivers() {
		row := ReceiverRow{
			Name: rs.Name, Kinds: strings.Join(rs.Kinds, ", "), Source: rs.Source,
			LastDelivery: when(rs.LastDelivery), LastSuccess: when(rs.LastSuccess), LastError: rs.LastError,
			Editable: rs.Source == "ui",
		}
		if row.Kinds == "" {
			row.Kinds = "none (alerts routed here are dropped)"
		}
		d.Receivers = append(d.Receivers, row)
	}
	for _, dl := range p.src.Deliveries(100) {
		row := DeliveryRow{
			Time: dl.Time.UTC().Format("2006-01-02 15:04:05"), Receiver: dl.Receiver, Integration: dl.Integration,
			Status: dl.Status, Alerts: strconv.Itoa(dl.Alerts), Attempt: strconv.Itoa(dl.Attempt),
			Took: strconv.FormatFloat(dl.Duration*1000, 'f', 0, 64) + " ms", Error: dl.Error, OK: dl.OK, GroupKey: dl.GroupKey,
		}
		d.Deliveries = append(d.Deliveries, row)
	}
	return d
}

func (p *NotifyPages) receivers(w http.ResponseWriter, r *http.Request) {
	form := ReceiverForm{Kind: "webhook", SendResolved: true}
	p.h.Page(w, r, "Receivers", "alerts", ReceiversBody(p.receiversData(form, "", r.URL.Query().Get("done"))))
}

func (p *NotifyPages) saveReceiver(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "The form could not be read.", Err: err})
		return
	}
	f := func(k string) string { return strings.TrimSpace(r.PostForm.Get(k)) }
	form := ReceiverForm{
		Name: f("name"), Kind: f("kind"), URL: f("url"), Channel: f("channel"), To: f("to"), From: f("from"),
		Smarthost: f("smarthost"), Matchers: f("matchers"), GroupBy: f("group_by"), SendResolved: r.PostForm.Get("send_resolved") != "",
	}
	refuse := func(msg string) {
		p.h.render(w, r, http.StatusBadRequest, Layout("Receivers", "alerts", p.h.opts.Version), ReceiversBody(p.receiversData(form, msg, "")))
	}
	rc := notify.UIReceiver{Name: form.Name}
	if form.Matchers != "" {
		ms, err := notify.ParseMatchers(form.Matchers)
		if err != nil {
			refuse("The matchers do not parse: " + err.Error())
			return
		}
		for _, m := range ms {
			rc.Matchers = append(rc.Matchers, m.String())
		}
	}
	for _, g := range strings.Split(form.GroupBy, ",") {
		if g = strings.TrimSpace(g); g != "" {
			rc.GroupBy = append(rc.GroupBy, g)
		}
	}
	sr := form.SendResolved
	switch form.Kind {
	case "webhook":
		rc.WebhookConfigs = []notify.WebhookConfig{{URL: notify.Secret(form.URL), SendResolved: &sr}}
	case "slack":
		rc.SlackConfigs = []notify.SlackConfig{{APIURL: notify.Secret(form.URL), Channel: form.Channel, SendResolved: &sr}}
	case "email":
		rc.EmailConfigs = []notify.EmailConfig{{To: form.To, From: form.From, Smarthost: form.Smarthost, SendResolved: &sr}}
	default:
		refuse("Choose a kind: webhook, Slack or e-mail.")
		return
	}
	if err := p.src.PutReceiver(rc); err != nil {
		refuse("The receiver was refused: " + err.Error())
		return
	}
	http.Redirect(w, r, "/receivers?done="+url.QueryEscape("Receiver "+rc.Name+" saved."), http.StatusSeeOther)
}

func (p *NotifyPages) testReceiver(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !slices.ContainsFunc(p.src.Receivers(), func(rs notify.ReceiverStatus) bool { return rs.Name == name }) {
		p.h.Fail(w, r, &Error{Code: http.StatusNotFound, UserMessage: "There is no receiver " + strconv.Quote(name) + ".", Err: notify.ErrReceiverNotFound})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	msg := "Test notification sent to " + name + "."
	if err := p.src.Test(ctx, name); err != nil {
		msg = "Test notification to " + name + " failed: " + err.Error()
	}
	http.Redirect(w, r, "/receivers?done="+url.QueryEscape(msg), http.StatusSeeOther)
}

func (p *NotifyPages) deleteReceiver(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := p.src.DeleteReceiver(name); err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, notify.ErrReceiverNotFound):
			code = http.StatusNotFound
		case errors.Is(err, notify.ErrReceiverConflict):
			code = http.StatusConflict
		}
		p.h.Fail(w, r, &Error{Code: code, UserMessage: "The receiver could not be deleted: " + err.Error(), Err: err})
		return
	}
	http.Redirect(w, r, "/receivers?done="+url.QueryEscape("Receiver "+name+" deleted."), http.StatusSeeOther)
}
