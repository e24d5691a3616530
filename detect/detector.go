package detect

import (
	"math"
	"time"
	"unsafe"
)

// Options configures a Detector. The zero value watches a gauge.
type Options struct {
	// Counter marks a monotonic counter (an OTLP monotonic sum, a Prometheus
	// _total): the detector watches its rate per second, and a drop in the value is
	// a reset, not an anomaly. Zero (false) watches the value itself.
	Counter bool
}

// Result is the detector's verdict on one sample.
type Result struct {
	Time time.Time // the sample's timestamp
	// Value is what was judged: the sample, or for a counter its rate per second.
	Value float64
	// Score is the anomaly score in [0, 1]. It rises when the series starts doing
	// something it has not done lately (a spike, a shift, noise growing or
	// vanishing) and is damped for a while after an alert, so that one incident
	// gives one alert. Scores ≥ AlertScore are anomalies.
	Score float64
	// Expected, Lower and Upper are the learned expectation and its band (±3
	// noise widths) for this time of day and week; NaN while warming up.
	Expected, Lower, Upper float64
	// Since is when the current anomalous stretch began: set by an alert, kept
	// while the samples stay outside the band, zero otherwise.
	Since time.Time
	// Skipped reports a sample that taught the detector nothing: NaN or ±Inf, out
	// of order, or a counter's first sample or reset.
	Skipped bool
}

// AlertScore is the score at and above which a sample is reported as anomalous.
const AlertScore = 0.5

// StateBytes is the memory one Detector keeps, in bytes.
const StateBytes = int(unsafe.Sizeof(Detector{}))

// Detector learns one series and scores each of its samples. It keeps a fixed,
// small state (StateBytes) and does constant work per sample. Use NewDetector.
// A Detector is not safe for concurrent use.
//
// The model: the value is level + trend + a daily profile (96 knots, linearly
// interpolated) + a day-of-week offset + noise. Each sample's residual is scaled
// by a robust running noise width (the median absolute residual), and four
// surprises are watched: the sample alone, the mean of the last few residuals (a
// shift), their mean size growing (noise rising), and vanishing (a flat line).
// Each surprise is compared with an envelope of its own recent peaks, so a series
// that is always spiky is not always anomalous. The clock is the samples'
// timestamps; the detector never reads the wall clock.
type Detector struct {
	counter bool
	hold    uint16  // samples left in the quiet stretch after an alert
	n       uint32  // samples learned
	dt      float32 // typical interval between samples, seconds
	last    int64   // timestamp of the last accepted sample, Unix nanoseconds
	lastV   float64 // last raw value (counters)
	since   int64   // start of the anomalous stretch, Unix nanoseconds; 0 if none
	level   float64
	trend   float64 // per sample
	scale   float64 // median |residual|
	mean    float64 // long mean of the value
	spread  float64 // long mean absolute deviation of the value
	mFast   float64 // short mean of scaled residuals
	aFast   float64 // short mean of |scaled residuals|
	stat    [nStats]envStat
	day     [dayKnots]float32 // daily profile
	week    [7]float32        // day-of-week offsets, Monday first
}

const (
	nStats   = 4
	dayKnots = 96
	knotSec  = 86400 / dayKnots
)

// envStat follows one surprise: its running mean, mean absolute deviation, and
// the envelope of its recent peaks.
type envStat struct{ mean, mad, env float32 }

// Tuning: one configuration for every series, chosen on the NAB corpus.
const (
	warmup     = 50    // samples before any score
	alphaLevel = 0.02  // level smoothing per sample
	alphaTrend = 0.002 // trend smoothing per sample
	alphaScale = 0.01  // noise width step per sample
	alphaFast  = 0.4   // short window of residuals (≈ 4 samples)
	alphaStat  = 0.002 // memory of each surprise's mean and deviation
	seasonDays = 3.0   // memory of the daily profile, days
	weekBoost  = 6     // day-of-week offsets learn this much faster than one knot (memory ≈ 3 weeks)
	envDecay   = 0.001 // decay of each envelope per sample
	minFloor   = 1.0   // nor below this (log1p(3.5): a residual of 3.5 noise widths)
	envFloor   = 3.0   // an envelope never decays below mean + envFloor·deviation
	initMad    = 0.2   // deviation assumed for each surprise when scoring starts
	clipZ      = 4.0   // residuals beyond clipZ noise widths teach only clipZ widths
	flatFloor  = 0.1   // mean |scaled residual| below this means the noise vanished
	holdAt     = 0.25  // envelope excess that starts a quiet stretch (≈ AlertScore)
	holdLen    = 150   // samples in the quiet stretch
	holdMul    = 0.3   // scores are multiplied by this during the quiet stretch
	scoreGain  = 2.9   // score = 1 − e^(−scoreGain·excess)
	bandWidth  = 3.0   // Lower and Upper are this many noise widths from Expected
)

// NewDetector returns a detector for one series.
func NewDetector(opts Options) *Detector {
	return &Detector{counter: opts.Counter}
}

// Observe judges the sample (ts, v) and then learns from it. Samples must arrive in
// time order; a sample not after the previous one is skipped. NaN, ±Inf and gaps
// never corrupt the state.
func (d *Detector) Observe(ts time.Time, v float64) Result {
	r := Result{Time: ts, Value: v, Expected: math.NaN(), Lower: math.NaN(), Upper: math.NaN()}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.Skipped = true
		return r
	}
	t := ts.UnixNano()
	if d.last != 0 && t <= d.last {
		r.Skipped = true
		return r
	}
	first := d.last == 0
	gap := float64(t-d.last) / 1e9
	d.last = t
	if d.counter {
		prev := d.lastV
		d.lastV = v
		if first || v < prev {
			r.Skipped = true // no rate yet, or a reset
			return r
		}
		v = (v - prev) / gap
		r.Value = v
	} else if first {
		gap = 0
	}
	if gap > 0 {
		if d.dt == 0 {
			d.dt = float32(gap)
		} else {
			d.dt += 0.05 * (float32(gap) - d.dt)
		}
	}

	// Position in the day (between two knots) and the week.
	sec := ts.Unix()
	hp := float64(((sec%86400)+86400)%86400)/knotSec - 0.5
	if hp < 0 {
		hp += dayKnots
	}
	h0 := int(hp)
	frac := hp - float64(h0)
	h1 := (h0 + 1) % dayKnots
	dow := int(((sec/86400)%7 + 7 + 3) % 7) // 0 = Monday (1970-01-01 was a Thursday)
	season := (1-frac)*float64(d.day[h0]) + frac*float64(d.day[h1]) + float64(d.week[dow])

	if d.n == 0 {
		d.level, d.mean = v, v
	}
	// The trend is extrapolated across missed samples, but not across a long gap.
	steps := 1.0
	if d.dt > 0 && gap > 0 {
		steps = math.Min(gap/float64(d.dt), 12)
	}
	expected := d.level + d.trend*steps + season
	width := math.Max(d.scale*1.4826, 0.01*d.spread+1e-6*math.Abs(d.level)+1e-12)
	z := (v - expected) / width

	if d.n >= warmup {
		r.Score = d.surprise(z)
		r.Expected = expected
		r.Lower = expected - bandWidth*width
		r.Upper = expected + bandWidth*width
	}

	// Learn. Large residuals are clipped so one spike cannot drag the model.
	zc := z
	if d.n >= warmup {
		zc = math.Max(-clipZ, math.Min(clipZ, z))
	}
	e := zc * width
	prevLevel := d.level
	d.level += d.trend*steps + alphaLevel*e
	d.trend += alphaTrend * (d.level - prevLevel - d.trend)
	switch {
	case d.n == 0:
	case d.n < warmup:
		d.scale += (math.Abs(e)*0.7 - d.scale) / float64(d.n)
	case math.Abs(e) > d.scale: // step towards the median of |residual|
		d.scale += alphaScale * math.Max(d.scale, 0.01*d.spread+1e-12)
	default:
		d.scale -= alphaScale * d.scale
	}
	d.mean += alphaScale * (v - d.mean)
	d.spread += alphaScale * (math.Abs(v-d.mean) - d.spread)
	if d.dt > 0 {
		g := float32(math.Min(0.5, float64(d.dt)/knotSec/seasonDays))
		se := float32(e * (1 - alphaLevel))
		d.day[h0] += g * float32(1-frac) * se
		d.day[h1] += g * float32(frac) * se
		d.week[dow] += g * weekBoost / dayKnots * se
	}
	if d.n < math.MaxUint32 {
		d.n++
	}

	switch {
	case r.Score >= AlertScore:
		if d.since == 0 {
			d.since = t
		}
	case math.Abs(z) < bandWidth:
		d.since = 0
	}
	if d.since != 0 {
		r.Since = time.Unix(0, d.since).In(ts.Location())
	}
	return r
}

// surprise turns a scaled residual into a score in [0, 1]. Each surprise is
// compared with the envelope of its own recent peaks: a sample scores only when it
// is more surprising than anything the series did lately.
func (d *Detector) surprise(z float64) float64 {
	d.mFast += alphaFast * (z - d.mFast)
	d.aFast += alphaFast * (math.Abs(z) - d.aFast)
	s := [nStats]float64{
		math.Log1p(math.Abs(z)),
		math.Log1p(math.Abs(d.mFast) / math.Sqrt(alphaFast/(2-alphaFast))),
		math.Max(0, math.Log((d.aFast+1e-3)/0.8)),
		math.Max(0, -math.Log((d.aFast+1e-3)/flatFloor)),
	}
	excess := 0.0
	for i := range s {
		st := &d.stat[i]
		if d.n == warmup {
			st.mean, st.mad = float32(s[i]), initMad
			st.env = max(st.mean+envFloor*st.mad, minFloor)
		}
		excess = math.Max(excess, s[i]-float64(st.env))
		st.mean += alphaStat * float32(s[i]-float64(st.mean))
		st.mad += alphaStat * (float32(math.Abs(s[i]-float64(st.mean))) - st.mad)
		floor := max(st.mean+envFloor*st.mad, minFloor)
		st.env = max(floor+(st.env-floor)*(1-envDecay), float32(s[i]))
	}
	score := 1 - math.Exp(-excess*scoreGain)
	if d.hold > 0 {
		d.hold--
		score *= holdMul
	} else if excess >= holdAt {
		d.hold = holdLen
	}
	return score
}
