package notify

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Silence states, as Alertmanager names them.
const (
	SilenceStatePending = "pending"
	SilenceStateActive  = "active"
	SilenceStateExpired = "expired"
)

// Silence mutes the alerts its matchers select between StartsAt and EndsAt.
// JSON is Alertmanager's API v2 gettableSilence.
type Silence struct {
	ID        string        `json:"id"`
	Matchers  Matchers      `json:"matchers"`
	StartsAt  time.Time     `json:"startsAt"`
	EndsAt    time.Time     `json:"endsAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
	CreatedBy string        `json:"createdBy"`
	Comment   string        `json:"comment"`
	Status    SilenceStatus `json:"status"`
}

// SilenceStatus is the state of a silence at the time it was read.
type SilenceStatus struct {
	State string `json:"state"`
}

// Errors of silences, usable with errors.Is.
var (
	ErrSilenceNotFound   = errors.New("silence not found")
	ErrSilenceExpired    = errors.New("silence already expired")
	ErrInvalidSilence    = errors.New("invalid silence")
	ErrTooManySilences   = errors.New("too many silences")
	ErrReceiverNotFound  = errors.New("receiver not found")
	ErrReceiverConflict  = errors.New("receiver is defined in the configuration file")
	ErrInvalidReceiver   = errors.New("invalid receiver")
	errNotifierIsClosing = errors.New("notifier is closed")
)

// Limits of silences.
const (
	maxSilences       = 10_000
	maxSilenceComment = 4096
	maxSilenceMatch   = 64
)

func silenceState(s *Silence, now time.Time) string {
	if now.Before(s.StartsAt) {
		return SilenceStatePending
	}
	if !now.Before(s.EndsAt) {
		return SilenceStateExpired
	}
	return SilenceStateActive
}

// mutes reports whether the silence is active at now and matches lset.
func (s *Silence) mutes(lset model.LabelSet, now time.Time) bool {
	return silenceState(s, now) == SilenceStateActive && s.Matchers.Matches(lset)
}

func validateSilence(s *Silence) error {
	if len(s.Matchers) == 0 {
		return fmt.Errorf("%w: at least one matcher required", ErrInvalidSilence)
	}
	if len(s.Matchers) > maxSilenceMatch {
		return fmt.Errorf("%w: %d matchers, at most %d", ErrInvalidSilence, len(s.Matchers), maxSilenceMatch)
	}
	allEmpty := true
	for i, m := range s.Matchers {
		nm, err := NewMatcher(m.Type, m.Name, m.Value)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidSilence, err)
		}
		s.Matchers[i] = nm
		if !nm.Matches("") {
			allEmpty = false
		}
	}
	if allEmpty {
		return fmt.Errorf("%w: at least one matcher must not match the empty string", ErrInvalidSilence)
	}
	if s.EndsAt.IsZero() {
		return fmt.Errorf("%w: invalid zero end timestamp", ErrInvalidSilence)
	}
	if !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("%w: start time must be before end time", ErrInvalidSilence)
	}
	if len(s.Comment) > maxSilenceComment {
		return fmt.Errorf("%w: comment longer than %d bytes", ErrInvalidSilence, maxSilenceComment)
	}
	return nil
}

// canUpdate reports whether silence a may be changed into b in place without
// changing the history of what was silenced (Alertmanager's rule): same
// matchers, and for an active silence the same start and an end not in the
// past; for a pending one a start not in the past; never for an expired one.
func canUpdate(a, b *Silence, now time.Time) bool {
	if !slices.EqualFunc(a.Matchers, b.Matchers, func(x, y Matcher) bool {
		return x.Type == y.Type && x.Name == y.Name && x.Value == y.Value
	}) {
		return false
	}
	switch silenceState(a, now) {
	case SilenceStateActive:
		return b.StartsAt.Equal(a.StartsAt) && !b.EndsAt.Before(now)
	case SilenceStatePending:
		return !b.StartsAt.Before(now)
	}
	return false
}

func newSilenceID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Silences returns every silence (expired ones until they are collected),
// active first, then pending, then expired, each by end time.
func (n *Notifier) Silences() []Silence {
	now := n.now()
	n.mu.Lock()
	out := make([]Silence, 0, len(n.silences))
	for _, s := range n.silences {
		c := *s
		c.Matchers = slices.Clone(s.Matchers)
		c.Status.State = silenceState(s, now)
		out = append(out, c)
	}
	n.mu.Unlock()
	rank := map[string]int{SilenceStateActive: 0, SilenceStatePending: 1, SilenceStateExpired: 2}
	slices.SortFunc(out, func(a, b Silence) int {
		if c := rank[a.Status.State] - rank[b.Status.State]; c != 0 {
			return c
		}
		if c := a.EndsAt.Compare(b.EndsAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Silence returns the silence id.
func (n *Notifier) Silence(id string) (Silence, error) {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.silences[id]
	if !ok {
		return Silence{}, fmt.Errorf("%w: %q", ErrSilenceNotFound, id)
	}
	c := *s
	c.Matchers = slices.Clone(s.Matchers)
	c.Status.State = silenceState(s, now)
	return c, nil
}

// PutSilence creates a silence (empty ID) or updates one, with Alertmanager's
// semantics: a change that would rewrite history (other matchers, or another
// start of an active silence) expires the old silence and creates a new one
// with a new ID. A start in the past becomes now. It returns the ID.
func (n *Notifier) PutSilence(s Silence) (string, error) {
	now := n.now()
	s.Matchers = slices.Clone(s.Matchers)
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	if err := validateSilence(&s); err != nil {
		return "", err
	}
	if s.EndsAt.Before(now) {
		return "", fmt.Errorf("%w: end time can't be in the past", ErrInvalidSilence)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return "", errNotifierIsClosing
	}
	var prev *Silence
	if s.ID != "" {
		var ok bool
		if prev, ok = n.silences[s.ID]; !ok {
			n.mu.Unlock()
			return "", fmt.Errorf("%w: %q", ErrSilenceNotFound, s.ID)
		}
	}
	if prev != nil && canUpdate(prev, &s, now) {
		s.UpdatedAt = now
		s.Status = SilenceStatus{}
		*prev = s
	} else {
		if len(n.silences) >= maxSilences {
			n.gcSilences(now)
			if len(n.silences) >= maxSilences {
				n.mu.Unlock()
				return "", fmt.Errorf("%w: at most %d", ErrTooManySilences, maxSilences)
			}
		}
		if prev != nil && silenceState(prev, now) != SilenceStateExpired {
			expireSilence(prev, now)
		}
		s.ID = newSilenceID()
		if s.StartsAt.Before(now) {
			s.StartsAt = now
		}
		s.UpdatedAt = now
		s.Status = SilenceStatus{}
		c := s
		n.silences[s.ID] = &c
	}
	n.dirty |= dirtySilences
	n.mu.Unlock()
	n.log.Info("silence saved", "id", s.ID, "matchers", s.Matchers.String(), "ends", s.EndsAt, "created_by", s.CreatedBy)
	return s.ID, n.persist(dirtySilences)
}

func expireSilence(s *Silence, now time.Time) {
	if silenceState(s, now) == SilenceStatePending {
		s.StartsAt = now
	}
	s.EndsAt = now
	s.UpdatedAt = now
}

// ExpireSilence ends silence id now. A pending silence is expired without
// ever having been active.
func (n *Notifier) ExpireSilence(id string) error {
	now := n.now()
	n.mu.Lock()
	s, ok := n.silences[id]
	if !ok {
		n.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrSilenceNotFound, id)
	}
	if silenceState(s, now) == SilenceStateExpired {
		n.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrSilenceExpired, id)
	}
	expireSilence(s, now)
	n.dirty |= dirtySilences
	n.mu.Unlock()
	n.log.Info("silence expired", "id", id)
	return n.persist(dirtySilences)
}

// silencedBy returns the IDs of the active silences that match lset. n.mu is
// held.
func (n *Notifier) silencedBy(lset model.LabelSet, now time.Time) []string {
	var ids []string
	for id, s := range n.silences {
		if s.mutes(lset, now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// gcSilences drops the silences expired for longer than the retention. n.mu
// is held.
func (n *Notifier) gcSilences(now time.Time) {
	for id, s := range n.silences {
		if s.EndsAt.Add(n.opts.Retention).Before(now) {
			delete(n.silences, id)
			n.dirty |= dirtySilences
		}
	}
}
