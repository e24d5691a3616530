package detect

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"

	"outpost/tsdb"
)

// The series the live engine writes back, one of each per watched series. They
// carry the watched series' labels, with its metric name moved to MetricLabel.
const (
	ScoreMetric = "outpost_anomaly_score"
	LowerMetric = "outpost_expected_lower"
	UpperMetric = "outpost_expected_upper"
	// MetricLabel holds the watched series' metric name on the series above.
	MetricLabel = "anomaly_metric"
)

// LiveOptions configures a Live engine. Every zero field means the default stated
// on it.
type LiveOptions struct {
	// Storage receives the scores and expected bands (ScoreMetric, LowerMetric,
	// UpperMetric) through its appenders; or, when it also has AppendDerived (as
	// a *tsdb.DB does), through that, keeping the refs of the series written:
	// the TSDB's observer then does not see them come back. Required.
	Storage storage.Appendable

	// MetricTypes returns the type of each known metric family by metric name
	// (counter, gauge, histogram, …), e.g. from the TSDB's metadata. It is called
	// only when a metric name is seen for the first time, at most once per batch
	// handled. Zero: names alone tell counters (_total, _count, _sum, _bucket).
	MetricTypes func() map[string]string

	// MaxSeries caps the series watched. A new series beyond it takes the place
	// of one that has had no sample for five minutes; while every watched series
	// is active, new ones are not watched (LiveStats.Untracked). Zero: 10,000.
	MaxSeries int

	// IdleAfter drops a watched series (its learned state too) once the newest
	// sample seen by the engine is this much newer than the series' latest sample.
	// Zero: one hour.
	IdleAfter time.Duration

	// QueueSamples bounds the samples waiting to be scored. A batch that does not
	// fit is dropped and counted (LiveStats.Dropped): ingest never waits for the
	// detector. Zero: 1,000,000.
	QueueSamples int

	// WriteInterval is the most sample time between two writes of one series'
	// score and band while it is normal (unless the series' own samples are
	// further apart). A normal score is written when the next one, expected one
	// interval of the series (or Resolution) later, might come too late to keep
	// that promise; should one come later than that after all, the score held
	// back before it is written then, at its own time. So the writes of a
	// regular series are WriteInterval apart, those of one whose samples come
	// a little early or late a little less. Every score of an anomalous
	// stretch, and the first normal one after it, are written; nothing is
	// written while the detector warms up. Each write is three samples (the
	// band rounded outward to a short decimal, at most 1% of its width), so
	// writing every score costs more than ingesting a sample. Zero: five
	// minutes, PromQL's default lookback, so that PromQL never shows the series
	// as stale between writes. Negative: every score (see Resolution).
	WriteInterval time.Duration

	// Resolution is the time step at which each series is scored: its samples
	// are gathered into buckets this wide (of sample time, aligned to the Unix
	// epoch), and the detector sees one value per bucket: the mean of a gauge's
	// samples, the latest value of a counter's, at the time of the bucket's
	// latest sample. A bucket is scored when the series' next sample falls in a
	// later one, or at once when the interval between its latest two samples says
	// the next one will; so a series sampled once per Resolution or less often
	// is scored on every sample without delay, one sampled every 15 s once a
	// minute. Scores, bands, explanations and Anomaly.Since then have this
	// resolution. Zero: one minute. Negative: every sample.
	Resolution time.Duration

	// MaxAnomalies caps the anomalies remembered for Anomalies; the oldest ended
	// ones (or else the lowest scored) make room, an eighth of the cap at a
	// time. Zero: 1,000.
	MaxAnomalies int

	// RecentFor is how long, in sample time, an ended anomaly stays listed. Zero:
	// 24 hours.
	RecentFor time.Duration

	// Logger receives write failures. Zero: slog.Default().
	Logger *slog.Logger
}

// Live scores metric samples as they are stored: it takes each committed batch
// from the TSDB (Observe is a tsdb.Observer) through a bounded queue, runs every
// sample through a Set keyed by the TSDB's series ref, writes each series' score and expected
// band back as series, and keeps the list of series anomalous now and recently.
// One goroutine owns the detectors and the writes; Close stops it. The engine's
// only clock is the samples' timestamps.
type Live struct {
	opts LiveOptions
	set  *Set

	queue  chan liveItem
	queued atomic.Int64 // samples in queue
	quit   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once

	dropped, processed, scoredN, written, writeErrs atomic.Int64
	refusedSkips                                    atomic.Int64 // samples of refused series not offered to the Set again

	// own is the engine's own write through appenders while it is being
	// committed, nil otherwise: the TSDB shows it to Observe like any other
	// batch (AppendDerived does not).
	own atomic.Pointer[ownBatch]

	// Owned by the goroutine.
	res       int64           // Resolution in ms; zero: every sample
	index     refIndex        // the Set's entries by TSDB ref
	scored    int64           // detector runs, for LiveStats.Scored
	refs      refAppender     // Storage's AppendDerived, if it has one
	kinds     map[string]bool // metric name → counter
	types     map[string]string
	typesAt   uint64 // round in which types was last read
	round     uint64
	now       int64 // newest sample time seen, Unix ms
	lastEvict int64
	warnedCap bool // the cap was reached, and said so in the log
	// refused holds the refs of series the full Set refused, marked in index
	// with refusedEntry, so that their samples are skipped without asking the
	// Set again until retryAt (sample time, Unix ms), when the marks go.
	refused   []uint64
	retryAt   int64
	pending   []tsdb.RefSample // Ref zero: by Labels
	resolve   []pendingRef     // pending samples whose ref AppendDerived will tell
	notes     []liveNote       // verdicts for the anomaly list, applied once pending is written
	lb        *labels.Builder
	described bool // the output metrics' metadata was written

	mu        sync.Mutex // guards anomalies
	anomalies map[uint64]*Anomaly
}

type liveItem struct {
	batch []tsdb.ObservedSample
	sync  chan struct{} // closed once everything before it is written
}

// ownBatch tells the engine's own write of scores and bands from ingest's
// batches, so that Observe drops it whole instead of queueing it and looking up
// each of its samples: how many samples were written, the sum of their
// timestamps and the XOR of their values' bits. These do not depend on the
// order, and the TSDB hands a commit to its observer grouped by series, not in
// the order written. Another batch that matched would also hold only the
// engine's output series (its first and last samples' metric names are
// checked), which the engine skips anyway; a write that does not match (some
// samples refused, say) goes the slow way and is skipped sample by sample.
type ownBatch struct {
	n    int
	sumT int64
	xorV uint64
}

func newOwnBatch(pending []tsdb.RefSample) *ownBatch {
	o := &ownBatch{n: len(pending)}
	for i := range pending {
		o.sumT += pending[i].T
		o.xorV ^= math.Float64bits(pending[i].V)
	}
	return o
}

func (o *ownBatch) is(batch []tsdb.ObservedSample) bool {
	if len(batch) != o.n || !isOutput(batch[0].Labels) || !isOutput(batch[len(batch)-1].Labels) {
		return false
	}
	var sumT int64
	var xorV uint64
	for i := range batch {
		sumT += batch[i].T
		xorV ^= math.Float64bits(batch[i].V)
	}
	return sumT == o.sumT && xorV == o.xorV
}

// isOutput reports whether lset is one of the engine's output series.
func isOutput(lset labels.Labels) bool { return isOutputName(lset.Get(labels.MetricName)) }

// isOutputName reports whether name is the metric name of one of the engine's
// output series.
func isOutputName(name string) bool {
	switch name {
	case ScoreMetric, LowerMetric, UpperMetric:
		return true
	}
	return false
}

// refAppender is the bulk write path of a *tsdb.DB for derived samples.
type refAppender interface {
	AppendDerived([]tsdb.RefSample) (int64, error)
}

// liveSeries is the engine's note on one watched series, kept in its Set entry
// beside its Detector. The pointer comes first (see setEntry).
type liveSeries struct {
	// The output series (score, lower, upper): their refs with AppendDerived, else
	// their labels, allocated at the first write (a *tsdb.DB never needs them).
	out *[3]labels.Labels
	// agg, with the entry's time of the latest sample and out, is the first
	// cache line of a Set entry: a sample that does not close a bucket reads
	// and writes only that line.
	agg       liveAgg
	refs      [3]tsdb.SeriesRef
	lastWrite int64     // latest written score, Unix ms
	held      outSample // the latest score not written, while holding
	written   bool      // lastWrite is set
	high      bool      // the latest written score was anomalous
	holding   bool      // held is a score newer than lastWrite
}

// outSample is one scored value as written: the score and the band at t (Unix
// ms).
type outSample struct {
	t                   int64
	score, lower, upper float64
}

// pendingRef is a pending sample written by labels, and where its ref goes.
type pendingRef struct {
	i   int
	dst *tsdb.SeriesRef
}

type liveNote struct {
	id      uint64
	lset    labels.Labels
	name    string
	counter bool
	r       Result
}

// Anomaly is one series that is anomalous now or was recently.
type Anomaly struct {
	Labels   labels.Labels // the watched series
	Metric   string        // its metric name
	Selector string        // a PromQL selector of exactly this series
	Counter  bool          // scored through its rate per second
	// Score is the highest score of the stretch; Current is the latest one.
	Score, Current float64
	Since          time.Time // when the stretch began
	Last           time.Time // the series' latest sample
	Ended          time.Time // when the samples came back inside the band; zero while Active
	Active         bool
	// Value is the latest value judged (for a counter its rate); Expected, Lower
	// and Upper the expectation and band for it (NaN while unknown).
	Value, Expected, Lower, Upper float64
	Explanation                   string // the latest explanation while active

	// why is the latest verdict while active, which Anomalies explains: an
	// active series is judged at every sample, and the list is read rarely.
	why Result
}

// LiveStats are counters since NewLive.
type LiveStats struct {
	Tracked     int   // series watched now
	Queued      int64 // samples waiting
	Dropped     int64 // samples dropped because the queue was full
	Processed   int64 // samples taken in (the engine's own output is not)
	Scored      int64 // detector runs: one per series and Resolution, or per sample
	Written     int64 // score and band samples written
	WriteErrors int64 // failed commits of those
	Untracked   int64 // samples of new series not watched: the cap was reached
	Anomalies   int   // anomalies listed
}

// NewLive starts a Live engine. Give its Observe to the TSDB (SetObserver) and
// Close it before closing the TSDB.
func NewLive(opts LiveOptions) (*Live, error) {
	if opts.Storage == nil {
		return nil, errors.New("cannot start live detection: no storage")
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = 10000
	}
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = time.Hour
	}
	if opts.QueueSamples <= 0 {
		opts.QueueSamples = 1_000_000
	}
	if opts.WriteInterval == 0 {
		opts.WriteInterval = 5 * time.Minute
	}
	if opts.MaxAnomalies <= 0 {
		opts.MaxAnomalies = 1000
	}
	if opts.RecentFor <= 0 {
		opts.RecentFor = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Live{
		opts:      opts,
		set:       NewSet(&SetOptions{MaxSeries: opts.MaxSeries, IdleAfter: opts.IdleAfter}),
		queue:     make(chan liveItem, 4096),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		kinds:     map[string]bool{},
		lb:        labels.NewBuilder(labels.EmptyLabels()),
		anomalies: map[uint64]*Anomaly{},
	}
	l.res = resolutionMillis(opts.Resolution)
	l.set.dropped = l.index.remove
	l.refs, _ = opts.Storage.(refAppender)
	go l.run()
	return l, nil
}

// Observe queues a committed batch for scoring and returns at once; a batch that
// does not fit in the queue is dropped and counted. It is a tsdb.Observer.
func (l *Live) Observe(batch []tsdb.ObservedSample) {
	n := int64(len(batch))
	if n == 0 || l.closed.Load() {
		return
	}
	if o := l.own.Load(); o != nil && o.is(batch) {
		tsdb.RecycleObserved(batch)
		return // the engine's own scores and bands
	}
	if l.queued.Add(n) > int64(l.opts.QueueSamples) {
		l.queued.Add(-n)
		l.dropped.Add(n)
		tsdb.RecycleObserved(batch)
		return
	}
	select {
	case l.queue <- liveItem{batch: batch}:
	default:
		l.queued.Add(-n)
		l.dropped.Add(n)
		tsdb.RecycleObserved(batch)
	}
}

// Sync waits until every batch queued before it is scored and its results
// written, or ctx ends.
func (l *Live) Sync(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case l.queue <- liveItem{sync: ch}:
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Close scores what is queued, writes it, and stops the goroutine. Batches
// observed after Close are ignored.
func (l *Live) Close() error {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.quit)
	})
	<-l.done
	return nil
}

// Stats returns the engine's counters.
func (l *Live) Stats() LiveStats {
	l.mu.Lock()
	n := len(l.anomalies)
	l.mu.Unlock()
	return LiveStats{
		Tracked: l.set.Len(), Queued: l.queued.Load(), Dropped: l.dropped.Load(),
		Processed: l.processed.Load(), Scored: l.scoredN.Load(), Written: l.written.Load(), WriteErrors: l.writeErrs.Load(),
		Untracked: int64(l.set.Refused()) + l.refusedSkips.Load(), Anomalies: n,
	}
}

// Anomalies returns the series anomalous now and recently: the active ones first,
// each group by score, highest first. The copies are the caller's.
func (l *Live) Anomalies() []Anomaly {
	l.mu.Lock()
	out := make([]Anomaly, 0, len(l.anomalies))
	for _, a := range l.anomalies {
		out = append(out, *a)
	}
	l.mu.Unlock()
	for i := range out {
		if a := &out[i]; !a.why.Time.IsZero() {
			what := a.Metric
			if a.Counter {
				what = "rate of " + a.Metric + " (per second)"
			}
			a.Explanation, a.why = what+": "+a.why.Explain(""), Result{}
		}
	}
	slices.SortFunc(out, func(a, b Anomaly) int {
		switch {
		case a.Active != b.Active:
			if a.Active {
				return -1
			}
			return 1
		case a.Score != b.Score:
			if a.Score > b.Score {
				return -1
			}
			return 1
		case !a.Last.Equal(b.Last):
			return b.Last.Compare(a.Last)
		}
		return strings.Compare(a.Selector, b.Selector)
	})
	return out
}

func (l *Live) run() {
	defer close(l.done)
	for {
		select {
		case it := <-l.queue:
			n := l.handle(it)
			// Take whatever else is waiting into the same round of writes, up to
			// a bound so that writes and the anomaly list keep up under load.
			for more := true; more && len(l.pending) < maxPending && n < 100000; {
				select {
				case it := <-l.queue:
					n += l.handle(it)
				default:
					more = false
				}
			}
			l.flush()
		case <-l.quit:
			for len(l.queue) > 0 { // this goroutine is the only reader
				l.handle(<-l.queue)
			}
			l.flush()
			return
		}
	}
}

// maxPending is the most score and band samples written in one commit.
const maxPending = 20000

// handle scores one queued batch, or answers a Sync; it returns the samples
// scored.
func (l *Live) handle(it liveItem) int {
	if it.sync != nil {
		l.flush()
		close(it.sync)
		return 0
	}
	l.queued.Add(-int64(len(it.batch)))
	l.round++
	n := 0
	for i := range it.batch {
		if l.sample(&it.batch[i]) {
			n++
		}
		if len(l.pending) >= maxPending { // commits of moderate size are cheaper
			l.flush()
		}
	}
	n0 := len(it.batch)
	tsdb.RecycleObserved(it.batch) // nothing above keeps a sample
	l.processed.Add(int64(n))
	l.scoredN.Store(l.scored)
	if l.now-l.lastEvict >= l.opts.IdleAfter.Milliseconds()/4 {
		l.evict()
	}
	return n0
}

// refusedEntry marks in Live.index a series the Set refused.
var refusedEntry = &setEntry{}

// sample takes one sample in; it reports false for the engine's own output,
// which is skipped.
func (l *Live) sample(s *tsdb.ObservedSample) bool {
	e := l.index.get(s.Ref)
	if e == refusedEntry {
		if s.T < l.retryAt {
			l.refusedSkips.Add(1)
			return false
		}
		l.forgetRefused()
		e = nil
	}
	if e == nil {
		name := s.Labels.Get(labels.MetricName)
		if isOutputName(name) {
			return false
		}
		// Whether the series is a counter is worked out once, when it is new.
		e = l.set.entry(s.Ref, s.T*int64(time.Millisecond), func() Options { return Options{Counter: l.isCounter(name)} })
		if e == nil { // the cap is reached and every watched series is active
			// Not asked again before the Set looks for stale series again.
			l.index.put(s.Ref, refusedEntry)
			l.refused = append(l.refused, s.Ref)
			l.retryAt = max(l.retryAt, l.set.noRoomBefore()/int64(time.Millisecond))
			if !l.warnedCap {
				l.warnedCap = true
				l.opts.Logger.Warn("anomaly detector is watching as many series as it may; new series are not watched until others go quiet",
					"max_series", l.opts.MaxSeries, "metric", "outpost_detect_untracked_samples_total")
			}
			return false
		}
		l.index.put(s.Ref, e)
	}
	l.set.touch(e, s.T*int64(time.Millisecond))
	if s.T > l.now {
		l.now = s.T
	}
	if l.res > 0 {
		l.add(e, s, l.res)
	} else {
		l.score(e, s, s.T, s.V)
	}
	return true
}

// score runs the detector of e on v at t (Unix ms), writes the score and band
// when due and notes the verdict for the anomaly list; s is a sample of the
// series, for its ref (the Set's id) and labels.
func (l *Live) score(e *setEntry, s *tsdb.ObservedSample, t int64, v float64) {
	// The detector's days are UTC days; so are the explanation's times.
	r := e.d.Observe(time.UnixMilli(t).UTC(), v)
	l.scored++
	if r.Skipped {
		return
	}
	// While the detector warms up the score is zero and means nothing yet:
	// nothing is written, and a series that ends before the detector knows it
	// (a short-lived pod's) gets no output series at all.
	if !math.IsNaN(r.Lower) && !math.IsNaN(r.Upper) {
		l.keep(&e.note, s.Labels, outSample{t, r.Score, r.Lower, r.Upper}, r.Score >= AlertScore || !r.Since.IsZero())
	}
	// Only this goroutine changes l.anomalies, so it may read it unlocked.
	if r.Score >= AlertScore || len(l.anomalies) > 0 && l.anomalies[s.Ref] != nil {
		l.notes = append(l.notes, liveNote{s.Ref, s.Labels, s.Labels.Get(labels.MetricName), e.d.counter, r})
	}
}

// keep writes the score and band cur of the series lset, whose note is st,
// or holds them back while they are not due (see LiveOptions.WriteInterval);
// high tells an anomalous value.
func (l *Live) keep(st *liveSeries, lset labels.Labels, cur outSample, high bool) {
	every := l.opts.WriteInterval.Milliseconds()
	if st.holding && cur.t-st.lastWrite > every {
		// PromQL would show the series as stale from lastWrite+every on:
		// write the score held back, which is within the interval, after all.
		l.put(st, lset, st.held)
	}
	// A normal score is written when the next one may come too late to be:
	// the next is expected one interval (the series', or Resolution) later.
	next := max(st.agg.gap, l.res)
	if high || st.high || !st.written || every < 0 || cur.t-st.lastWrite >= every || cur.t+next > st.lastWrite+every {
		l.put(st, lset, cur)
	} else {
		st.held, st.holding = cur, true
	}
	st.high = high
}

// put queues the score and the band of one scored value.
func (l *Live) put(st *liveSeries, lset labels.Labels, o outSample) {
	lower, upper := roundBand(o.lower, o.upper)
	l.write(st, lset, 0, o.t, o.score)
	l.write(st, lset, 1, o.t, lower)
	l.write(st, lset, 2, o.t, upper)
	st.lastWrite, st.written, st.holding = o.t, true, false
}

// roundBand rounds a band outward to a decimal step of at most 1% of its width
// (…, 0.01, 0.1, 1, 10, …), so that the values written are short decimals: a
// chart cannot show the difference, and the TSDB, whose columns are decimal,
// converts and compresses them with less work. A band without width, or too
// narrow or wide for an exact power of ten, is kept as it is.
func roundBand(lower, upper float64) (float64, float64) {
	w := upper - lower
	if !(w > 0) || math.IsInf(w, 0) {
		return lower, upper
	}
	e := int(math.Floor(math.Log10(w / 100)))
	switch {
	case e < -22 || e > 22: // beyond the exact powers of ten
		return lower, upper
	case e >= 0:
		p := math.Pow10(e)
		return math.Floor(lower/p) * p, math.Ceil(upper/p) * p
	}
	// Divide by 10^-e rather than multiply by 10^e, which is not exact: the
	// result is then the float nearest to the short decimal.
	p := math.Pow10(-e)
	if max(math.Abs(lower), math.Abs(upper))*p >= 1<<53 {
		// A huge level beside a narrow band: scaled, it would lose the digits
		// that keep the rounding outward, or overflow.
		return lower, upper
	}
	return math.Floor(lower*p) / p, math.Ceil(upper*p) / p
}

// write queues v at t for output series k (0 score, 1 lower, 2 upper) of the
// series lset, by its ref when known.
func (l *Live) write(st *liveSeries, lset labels.Labels, k int, t int64, v float64) {
	if l.refs != nil && st.refs[k] != 0 {
		l.pending = append(l.pending, tsdb.RefSample{Ref: st.refs[k], T: t, V: v})
		return
	}
	var out labels.Labels
	if st.out != nil {
		out = st.out[k]
	}
	if out.IsEmpty() {
		l.lb.Reset(lset)
		l.lb.Set(MetricLabel, lset.Get(labels.MetricName))
		l.lb.Set(labels.MetricName, [3]string{ScoreMetric, LowerMetric, UpperMetric}[k])
		out = l.lb.Labels()
		if l.refs == nil { // written by labels every time: keep them
			if st.out == nil {
				st.out = new([3]labels.Labels)
			}
			st.out[k] = out
		}
	}
	if l.refs != nil {
		l.resolve = append(l.resolve, pendingRef{len(l.pending), &st.refs[k]})
	}
	l.pending = append(l.pending, tsdb.RefSample{Labels: out, T: t, V: v})
}

// publish applies the noted verdicts to the anomaly list, so that what the list
// shows is already written.
func (l *Live) publish() {
	if len(l.notes) == 0 {
		return
	}
	l.mu.Lock()
	for _, n := range l.notes {
		l.noteLocked(n.id, n.lset, n.name, n.counter, n.r)
	}
	l.mu.Unlock()
	clear(l.notes)
	l.notes = l.notes[:0]
}

// noteLocked keeps the list of anomalies up to date with one verdict.
func (l *Live) noteLocked(id uint64, lset labels.Labels, name string, counter bool, r Result) {
	a := l.anomalies[id]
	if a == nil && r.Score < AlertScore {
		return
	}
	if a == nil || !a.Active && r.Score >= AlertScore {
		if a == nil && len(l.anomalies) >= l.opts.MaxAnomalies {
			l.makeRoomLocked()
		}
		a = &Anomaly{Labels: lset, Metric: name, Selector: Selector(lset), Counter: counter, Since: r.Time}
		l.anomalies[id] = a
	}
	a.Current, a.Last = r.Score, r.Time
	a.Value, a.Expected, a.Lower, a.Upper = r.Value, r.Expected, r.Lower, r.Upper
	if r.Score > a.Score {
		a.Score = r.Score
	}
	if !r.Since.IsZero() {
		a.Since = r.Since
	}
	a.Active = !r.Since.IsZero() || r.Score >= AlertScore
	if a.Active {
		a.Ended = time.Time{}
		a.why = r
	} else if a.Ended.IsZero() {
		a.Ended = r.Time
	}
}

// makeRoomLocked removes the anomalies that matter least: the ended ones that
// ended first, or else the lowest scored. It removes an eighth of
// MaxAnomalies at once, so that a stream of new anomalies costs one sort of
// the list per eighth rather than a scan of it for each.
func (l *Live) makeRoomLocked() {
	type entry struct {
		id uint64
		a  *Anomaly
	}
	all := make([]entry, 0, len(l.anomalies))
	for id, a := range l.anomalies {
		all = append(all, entry{id, a})
	}
	slices.SortFunc(all, func(x, y entry) int {
		switch {
		case worse(x.a, y.a):
			return -1
		case worse(y.a, x.a):
			return 1
		}
		return 0
	})
	n := max(1, l.opts.MaxAnomalies/8, len(all)-l.opts.MaxAnomalies+1)
	for _, e := range all[:min(n, len(all))] {
		delete(l.anomalies, e.id)
	}
}

func worse(a, b *Anomaly) bool {
	if a.Active != b.Active {
		return !a.Active
	}
	if !a.Active {
		return a.Ended.Before(b.Ended)
	}
	return a.Score < b.Score
}

// forgetRefused removes the marks of refused series: their next samples ask
// the Set again.
func (l *Live) forgetRefused() {
	for _, ref := range l.refused {
		if l.index.get(ref) == refusedEntry {
			l.index.remove(ref)
		}
	}
	clear(l.refused)
	l.refused = l.refused[:0]
	l.retryAt = 0
}

// evict drops idle series and anomalies that ended long enough ago.
func (l *Live) evict() {
	l.lastEvict = l.now
	now := time.UnixMilli(l.now)
	if l.set.Evict(now) > 0 {
		l.forgetRefused() // there is room now
	}
	old := now.Add(-l.opts.RecentFor)
	l.mu.Lock()
	for id, a := range l.anomalies {
		if !a.Active && a.Ended.Before(old) || a.Active && a.Last.Before(old) {
			delete(l.anomalies, id)
		}
	}
	l.mu.Unlock()
}

func (l *Live) isCounter(name string) bool {
	if c, ok := l.kinds[name]; ok {
		return c
	}
	c := IsCounterName(name)
	if !c && l.opts.MetricTypes != nil {
		if _, ok := l.types[name]; !ok && l.typesAt != l.round {
			l.types, l.typesAt = l.opts.MetricTypes(), l.round
		}
		c = l.types[name] == "counter"
	}
	if len(l.kinds) >= 100000 {
		clear(l.kinds)
	}
	l.kinds[name] = c
	return c
}

// flush writes the pending scores and bands in one commit, then publishes the
// verdicts noted for the anomaly list.
func (l *Live) flush() {
	defer l.publish()
	if len(l.pending) == 0 {
		return
	}
	var err error
	if l.refs != nil {
		err = l.describe()
		if err == nil {
			_, err = l.refs.AppendDerived(l.pending)
		}
		// Keep the refs AppendDerived resolved, even for a failed call: a
		// series it created stays.
		for _, p := range l.resolve {
			if ref := l.pending[p.i].Ref; ref != 0 {
				*p.dst = ref
			}
		}
		if errors.Is(err, tsdb.ErrUnknownRef) {
			// An output series was removed from the TSDB's memory (its last
			// sample deleted by retention while the watched series was
			// silent): this round is lost, and the next writes go by labels.
			l.set.forEach(func(e *setEntry) { e.note.refs = [3]tsdb.SeriesRef{} })
		}
	} else {
		l.own.Store(newOwnBatch(l.pending))
		err = l.appendAll()
		l.own.Store(nil)
	}
	if err != nil {
		l.writeErrs.Add(1)
		l.opts.Logger.Warn("cannot write anomaly scores", "samples", len(l.pending), "err", err)
	} else {
		l.written.Add(int64(len(l.pending)))
		l.described = true
	}
	clear(l.pending)
	clear(l.resolve)
	if cap(l.pending) > 1<<16 {
		l.pending, l.resolve = nil, nil
	} else {
		l.pending, l.resolve = l.pending[:0], l.resolve[:0]
	}
}

// describe writes the output metrics' metadata once.
func (l *Live) describe() error {
	if l.described {
		return nil
	}
	app := l.opts.Storage.Appender(context.Background())
	l.updateMetadata(app)
	return app.Commit()
}

func (l *Live) updateMetadata(app storage.Appender) {
	for _, m := range [3][2]string{
		{ScoreMetric, "Anomaly score in [0, 1] of the series named by anomaly_metric, from Outpost's detector; 0.5 and above is anomalous."},
		{LowerMetric, "Lower edge of the value expected for the series named by anomaly_metric (a rate per second for counters)."},
		{UpperMetric, "Upper edge of the value expected for the series named by anomaly_metric (a rate per second for counters)."},
	} {
		app.UpdateMetadata(0, labels.FromStrings(labels.MetricName, m[0]), metadata.Metadata{Type: model.MetricTypeGauge, Help: m[1]})
	}
}

// appendAll writes the pending samples by their labels through one appender.
func (l *Live) appendAll() error {
	app := l.opts.Storage.Appender(context.Background())
	if !l.described {
		l.updateMetadata(app)
	}
	for _, o := range l.pending {
		if _, err := app.Append(0, o.Labels, o.T, o.V); err != nil {
			app.Rollback()
			return err
		}
	}
	return app.Commit()
}

// Selector returns a PromQL selector matching exactly the series lset, e.g.
// temp{room="a"}.
func Selector(lset labels.Labels) string {
	var b strings.Builder
	name := lset.Get(labels.MetricName)
	plain := name != ""
	for i, c := range name {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			plain = false
			break
		}
	}
	if plain {
		b.WriteString(name)
	}
	b.WriteByte('{')
	first := true
	lset.Range(func(lb labels.Label) {
		if lb.Name == labels.MetricName && plain {
			return
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(lb.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(lb.Value))
	})
	b.WriteByte('}')
	s := b.String()
	return strings.TrimSuffix(s, "{}")
}
