package detect

import (
	"math"
	"math/bits"
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
	// vanishing, a value outside everything seen so far); a score that would alert
	// right after an alerting sample is demoted below AlertScore, so that one
	// incident gives one alert rather than a run of them. Scores ≥ AlertScore are anomalies.
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
// interpolated, averaged over about a week) + a weekly profile (84 two-hour
// knots, what each hour of the week adds to the daily profile, learned slowly
// over weeks) + noise. Each profile is trusted as far as it explains the
// series: the expectation adds k·profile, where k in [0, 1] is the least-squares
// coefficient of the value (less level and trend, and less the daily profile for
// the weekly one) on the profile, fitted over the profile's own memory
// (seasonDays). For a series with no daily or weekly cycle a profile holds only
// the noise it has averaged, and k near 0 keeps that noise out of the residuals;
// for a seasonal series k is near 1. The profiles themselves learn from the
// residual of the whole model, as if k were 1. Each sample's residual is scaled
// by a robust running noise width (the median absolute residual), and four
// surprises are watched: the sample alone, the mean of the last few residuals (a
// shift), their mean size growing (noise rising), and vanishing (a flat line).
// Each surprise is compared with an envelope of its own recent peaks, so a series
// that is always spiky is not always anomalous; the excess over the envelopes is
// the raw surprise of the sample. The profiles' knots are 16-bit integers
// in units of a power of two per profile, rounded at random as they learn (see
// knotMax).
//
// The score is the anomaly likelihood of the raw surprises, as in the HTM
// detector's post-processing: the mean of the last avgLen raw surprises is
// compared with a Gaussian fitted to its own long history, and the score is the
// logarithm of the tail probability, 0.5 at a tail of 1e-5. A value outside the
// whole range seen so far (by more than rangeTol of it, or rangeYoung while
// fewer than farAfter samples are learned) scores 1. Either way the
// score is then gated by the size of the deviation: unless the sample, or the
// mean of the recent residuals, is further from the expectation than plain
// Gaussian noise ever goes in practice (gateLo noise widths), the score stays
// below AlertScore. A value far outside the range of a long history (by
// rangeFar of it, after farAfter samples) needs only gateFar noise widths: plain
// noise never leaves its range by that much, so a wide noise band should not
// hide it. The clock is the samples' timestamps; the detector never reads the
// wall clock.
type Detector struct {
	counter bool
	red     bool    // the previous score reached AlertScore
	ringAt  uint8   // next slot of ring
	dayE    uint8   // the daily profile's quantum: knot i is day[i]·quantum(dayE)
	weekE   uint8   // the weekly profile's quantum
	n       uint32  // samples learned
	lN      uint32  // short means the long distribution has learned
	dt      float32 // typical interval between samples, seconds
	last    int64   // timestamp of the last accepted sample, Unix nanoseconds
	lastV   float64 // last raw value (counters)
	since   int64   // start of the anomalous stretch, Unix nanoseconds; 0 if none
	level   float64
	trend   float64 // per sample
	scale   float64 // median |residual|
	mean    float64 // long mean of the value
	spread  float64 // long mean absolute deviation of the value
	lo, hi  float64 // the range of every value learned
	mFast   float64 // short mean of scaled residuals
	mSlow   float64 // longer mean of scaled (clipped) residuals
	aFast   float64 // short mean of |scaled residuals|
	ringSum float64 // sum of ring
	dayXY   float64 // mean of daily profile × (value − level − trend)
	dayXX   float64 // mean of daily profile²
	weekXY  float64 // mean of weekly profile × (value − level − trend − k·daily)
	weekXX  float64 // mean of weekly profile²
	lMean   float64 // long mean of the short mean of raw surprises
	lVar    float64 // and its variance
	stat    [nStats]envStat
	ring    [avgLen]float32  // the last raw surprises
	day     [dayKnots]int16  // daily profile, in units of quantum(dayE)
	week    [weekKnots]int16 // weekly profile from Monday 00:00, in units of quantum(weekE)
}

const (
	nStats    = 4
	avgLen    = 10
	dayKnots  = 96
	knotSec   = 86400 / dayKnots
	weekKnots = 84
	wKnotSec  = 7 * 86400 / weekKnots
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
	alphaSlow  = 0.05  // longer window of residuals (≈ 40 samples), for the gate
	alphaStat  = 0.002 // memory of each surprise's mean and deviation
	seasonDays = 7.0   // memory of the daily profile, days (less while younger)
	weekSlow   = 4.0   // a weekly knot learns this much slower than the plain mean of its visits
	weekMemory = 3.0   // … of its last weekMemory visits (less while younger)
	envDecay   = 0.01  // decay of each envelope per sample
	minFloor   = 1.0   // nor below this (log1p(3.5): a residual of 3.5 noise widths)
	envFloor   = 3.0   // an envelope never decays below mean + envFloor·deviation
	initMad    = 0.2   // deviation assumed for each surprise when scoring starts
	clipZ      = 3.85  // residuals beyond clipZ noise widths teach only clipZ widths
	flatFloor  = 0.1   // mean |scaled residual| below this means the noise vanished
	scoreGain  = 2.9   // raw surprise = 1 − e^(−scoreGain·excess over the envelope) …
	tailFrom   = 2.0   // … plus tailSlope per unit of excess beyond tailFrom, so that
	tailSlope  = 0.15  // a spike far beyond its envelope counts for more than one near it
	bandWidth  = 3.0   // Lower and Upper are this many noise widths from Expected

	// The anomaly likelihood (numenta's defaults).
	likWindow  = 8640       // memory of the long distribution, samples
	likLearn   = 100        // short means learned before the likelihood scores
	likMinMean = 0.03       // the long distribution's mean is taken as at least this
	likMinVar  = 0.0003     // and its variance
	likRepeat  = 0.3        // an alert right after an alert scores this instead
	likAlertX  = 4.26489303 // standard deviations at which the likelihood reaches AlertScore

	rangeTol = 0.01 // a value beyond the range seen by this fraction of it is novel
	// Until farAfter samples are learned, records are common: the range seen is
	// a small part of the series' normal range, and a slow swing or drift the
	// model lags behind makes a record at every step. Then only a value beyond
	// the range by rangeYoung of it is novel.
	rangeYoung = 0.5
	// Once farAfter samples are learned, a value beyond the range by rangeFar
	// of it needs only gateFar noise widths to pass the gate: by then a record
	// of plain noise passes the old extreme by a few per cent of the range,
	// never by rangeFar.
	rangeFar = 0.15
	gateFar  = 3.5
	farAfter = 1000

	// The gate: noise-equivalent deviations (in Gaussian widths) below gateLo keep
	// the score at 0, above gateLo+1 leave it whole. White noise reaches 5.5
	// widths about once in 30 million samples.
	gateLo   = 5.5
	gateRise = 3.0  // a mean |residual| of this many widths counts as 5.5
	gateFlat = 0.02 // a mean |residual| below this many widths passes the gate
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
	sod := sec % 86400 // seconds into the UTC day
	if sod < 0 {
		sod += 86400
	}
	hp := float64(sod)/knotSec - 0.5
	if hp < 0 {
		hp += dayKnots
	}
	h0 := int(hp)
	frac := hp - float64(h0)
	h1 := h0 + 1 // the next knot, around midnight
	if h1 == dayKnots {
		h1 = 0
	}
	// 1970-01-01 was a Thursday: Monday 00:00 is three days later.
	sow := (sec + 3*86400) % (7 * 86400) // seconds into the week
	if sow < 0 {
		sow += 7 * 86400
	}
	wp := float64(sow)/wKnotSec - 0.5
	if wp < 0 {
		wp += weekKnots
	}
	w0 := int(wp)
	wfrac := wp - float64(w0)
	w1 := w0 + 1
	if w1 == weekKnots {
		w1 = 0
	}
	daily := ((1-frac)*float64(d.day[h0]) + frac*float64(d.day[h1])) * quantum(d.dayE)
	weekly := ((1-wfrac)*float64(d.week[w0]) + wfrac*float64(d.week[w1])) * quantum(d.weekE)

	if d.n == 0 {
		d.level, d.mean = v, v
	}
	// The trend is extrapolated across missed samples, but not across a long gap.
	steps := 1.0
	if d.dt > 0 && gap > 0 {
		steps = min(gap/float64(d.dt), 12)
	}
	base := d.level + d.trend*steps
	kDay, kWeek := 1.0, 1.0 // (a ratio of overflowed sums, NaN, leaves k at 1)
	if k := d.dayXY / d.dayXX; k < 1 {
		kDay = max(0, k)
	}
	if k := d.weekXY / d.weekXX; k < 1 {
		kWeek = max(0, k)
	}
	expected := base + kDay*daily + kWeek*weekly
	width := max(d.scale*1.4826, 0.01*d.spread+1e-6*math.Abs(d.level)+1e-12)
	z := (v - expected) / width

	if d.n >= warmup {
		raw, size := d.surprise(z)
		gate := max(0, min(1, size-gateLo))
		r.Score = d.likelihood(raw, gate > 0)
		tol := rangeTol
		if d.n < farAfter {
			tol = rangeYoung
		}
		if span := d.hi - d.lo; span > 0 && (v > d.hi+span*tol || v < d.lo-span*tol) {
			r.Score = 1
			if d.n >= farAfter && (v > d.hi+span*rangeFar || v < d.lo-span*rangeFar) {
				gate = max(0, min(1, size-gateFar))
			}
		}
		r.Score *= gate
		r.Expected = expected
		r.Lower = expected - bandWidth*width
		r.Upper = expected + bandWidth*width
	}

	// Learn. Large residuals are clipped so one spike cannot drag the model.
	zc := z
	if d.n >= warmup {
		zc = max(-clipZ, min(clipZ, z))
	}
	e := zc * width // the residual judged, for the noise width
	// The model learns from the residual of the whole model (both profiles
	// counted in full), clipped alike.
	full := v - base - daily - weekly
	if d.n >= warmup {
		full = max(-clipZ*width, min(clipZ*width, full))
	}
	if d.dt > 0 {
		// The profiles' trust, over the daily profile's memory.
		a := min(0.5, float64(d.dt)/(seasonDays*86400))
		d.dayXY += a * (daily*(v-base) - d.dayXY)
		d.dayXX += a * (daily*daily - d.dayXX)
		d.weekXY += a * (weekly*(v-base-kDay*daily) - d.weekXY)
		d.weekXX += a * (weekly*weekly - d.weekXX)
	}
	prevLevel := d.level
	d.level += d.trend*steps + alphaLevel*full
	d.trend += alphaTrend * (d.level - prevLevel - d.trend)
	switch {
	case d.n == 0:
	case d.n < warmup:
		d.scale += (math.Abs(e)*0.7 - d.scale) / float64(d.n)
	case math.Abs(e) > d.scale: // step towards the median of |residual|
		d.scale += alphaScale * max(d.scale, 0.01*d.spread+1e-12)
	default:
		d.scale -= alphaScale * d.scale
	}
	d.mean += alphaScale * (v - d.mean)
	d.spread += alphaScale * (math.Abs(v-d.mean) - d.spread)
	if d.dt > 0 {
		// While the series is younger than seasonDays, each knot is the plain
		// mean of the days seen so far. The weekly knots learn what remains,
		// slowly, so that one odd day does not become a weekly habit.
		days := float64(d.n) * float64(d.dt) / 86400
		g := min(0.5, float64(d.dt)/knotSec/min(seasonDays, 1+days))
		gw := min(0.5, float64(d.dt)/wKnotSec/min(weekMemory, 1+days/7)) / weekSlow
		se := full * (1 - alphaLevel)
		r := dither(t)
		if x0, x1 := g*(1-frac)*se, g*frac*se; !stepKnots(&d.day[h0], &d.day[h1], d.dayE, x0, x1, r) {
			growKnots(d.day[:], &d.dayE, h0, h1, x0, x1, r)
		}
		if x0, x1 := gw*(1-wfrac)*se, gw*wfrac*se; !stepKnots(&d.week[w0], &d.week[w1], d.weekE, x0, x1, r>>32) {
			growKnots(d.week[:], &d.weekE, w0, w1, x0, x1, r>>32)
		}
		if float64(sod) < gap { // the first sample of a UTC day
			fitKnots(d.day[:], &d.dayE)
			fitKnots(d.week[:], &d.weekE)
		}
	}
	if d.n == 0 {
		d.lo, d.hi = v, v
	}
	d.lo, d.hi = min(d.lo, v), max(d.hi, v)
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

// surprise turns a scaled residual into a raw surprise in [0, 1] and the
// deviation's noise-equivalent size (in Gaussian widths). Each surprise is
// compared with the envelope of its own recent peaks: a sample scores only when
// it is more surprising than anything the series did lately. The size says
// whether the deviation is larger than noise ever is (the gate).
func (d *Detector) surprise(z float64) (raw, size float64) {
	d.mFast += alphaFast * (z - d.mFast)
	d.mSlow += alphaSlow * (max(-clipZ, min(clipZ, z)) - d.mSlow)
	d.aFast += alphaFast * (math.Abs(z) - d.aFast)

	// Noise-equivalent size: how many widths a Gaussian deviate would need to be
	// as rare under plain noise (the means are divided by their noise spread).
	size = max(math.Abs(z), math.Abs(d.mFast)/math.Sqrt(alphaFast/(2-alphaFast)))
	size = max(size, math.Abs(d.mSlow)/math.Sqrt(alphaSlow/(2-alphaSlow)))
	size = max(size, d.aFast*5.5/gateRise)
	if d.aFast < gateFlat {
		size = gateLo + 1
	}

	s := [nStats]float64{
		math.Log1p(math.Abs(z)),
		math.Log1p(math.Abs(d.mFast) / math.Sqrt(alphaFast/(2-alphaFast))),
	}
	// The noise surprises are both 0 while the mean size lies between the
	// vanishing and the rising levels, as it does most of the time: the
	// logarithm is taken only outside them.
	if a := d.aFast + 1e-3; a > riseAt || a < flatFloor {
		la := math.Log(a)
		s[2], s[3] = max(0, la-logRise), max(0, logFlat-la)
	}
	excess := 0.0
	for i := range s {
		st := &d.stat[i]
		if d.n == warmup {
			st.mean, st.mad = float32(s[i]), initMad
			st.env = max(st.mean+envFloor*st.mad, minFloor)
		}
		excess = max(excess, s[i]-float64(st.env))
		st.mean += alphaStat * float32(s[i]-float64(st.mean))
		st.mad += alphaStat * (float32(math.Abs(s[i]-float64(st.mean))) - st.mad)
		floor := max(st.mean+envFloor*st.mad, minFloor)
		st.env = max(floor+(st.env-floor)*(1-envDecay), float32(s[i]))
	}
	if excess == 0 {
		return 0, size
	}
	raw = 1 - math.Exp(-excess*scoreGain)
	if excess > tailFrom {
		// Not saturating at 1: a huge spike widens the likelihood's history
		// more than a moderate one, so the moderate ones that follow it on a
		// spiky series stay quiet.
		raw += tailSlope * (excess - tailFrom)
	}
	return raw, size
}

// riseAt is the mean |scaled residual| above which noise counts as rising
// (flatFloor: below which it has vanished); logRise and logFlat are their
// logarithms.
const riseAt = 0.8

var logRise, logFlat = math.Log(riseAt), math.Log(flatFloor)

// likelihood turns a raw surprise into a score: the tail probability of the mean
// of the last avgLen raw surprises under a Gaussian fitted to that mean's long
// history (exponentially weighted, memory likWindow samples), on a log scale
// where 0.5 is a tail of 1e-5 and 1 a tail of 1e-10. As in the HTM detector's
// post-processing, an alert right after an alert is demoted to likRepeat.
//
// need false says the score will be gated to zero anyway: only whether it would
// alert is worked out, without the costly tail probability.
func (d *Detector) likelihood(raw float64, need bool) float64 {
	i := int(d.ringAt)
	d.ringSum += raw - float64(d.ring[i])
	d.ring[i] = float32(raw)
	d.ringAt = uint8((i + 1) % avgLen)
	m := d.ringSum / avgLen

	score, red := 0.0, false
	if d.lN >= likLearn {
		mean := max(d.lMean, likMinMean)
		x := (m - mean) / math.Sqrt(max(d.lVar, likMinVar))
		if need {
			tail := 0.5 * math.Erfc(x/math.Sqrt2)
			score = math.Log(tail+1e-10) / math.Log(1e-10)
			red = score >= AlertScore
		} else {
			red = x >= likAlertX
		}
	}
	if red && d.red {
		score = min(score, likRepeat)
	}
	d.red = red

	a := max(1/float64(d.lN+1), 1.0/likWindow)
	dm := m - d.lMean
	d.lMean += a * dm
	d.lVar = (1 - a) * (d.lVar + a*dm*dm)
	if d.lN < math.MaxUint32 {
		d.lN++
	}
	return score
}

// The profiles' knots are 16-bit integers in units of a quantum per profile, a
// power of two: about the smallest at which every knot fits in ±knotMax, so
// that the largest knot keeps 14–15 significant bits, at half the size of
// float32 knots. A knot learns by steps often much smaller than the quantum (at
// one-minute samples a weekly knot moves by under a thousandth of a residual
// per sample), so a knot's new value is rounded up or down at random, in
// proportion to how near it is to each (the dither comes from the sample's
// time, so the detector stays deterministic): a knot then moves by its steps on
// average instead of never. The quantum grows as soon as a knot outgrows it,
// and shrinks, if the knots allow, at the first sample of each UTC day.
const (
	knotMax = math.MaxInt16
	// A quantum is 2^(e−quantumBias) for an exponent e in 1…255: from about
	// 1e-39 to 4e37, so that knots span float32's range. e = 0 says the
	// profile has no quantum yet: every knot is zero.
	quantumBias = 130
	// firstRoom is how many doublings a profile's first quantum leaves its
	// knots to grow in before the quantum must grow again (a pass over every
	// knot): a young series' knots grow from their first steps, a fraction g
	// of a residual, to the residuals' size within a few samples. The
	// precision it costs lasts until the next fit, at most a day.
	firstRoom = 3
	// ditherSeed picks the stream of dithers. Which stream it is moves NAB's
	// single run by a threshold flip (68.87–69.07 on standard over the streams
	// 1–8) and the mean over start offsets by a few hundredths (65.54–65.58);
	// stream 3 gives the single run of the float32 knots.
	ditherSeed = 3
)

// quantum returns the quantum of exponent e, 2^(e−quantumBias).
func quantum(e uint8) float64 {
	return math.Float64frombits(uint64(1023+int(e)-quantumBias) << 52)
}

// stepKnots adds x0 to the knot *k0 and x1 to *k1 of a profile whose quantum
// has the exponent e, rounding each at random by the low 32 bits of r (two
// 16-bit dithers), and reports whether both still fit the quantum. If not, or
// if the profile has no quantum yet, it changes nothing: growKnots takes the
// step.
func stepKnots(k0, k1 *int16, e uint8, x0, x1 float64, r uint64) bool {
	inv := math.Float64frombits(uint64(1023-int(e)+quantumBias) << 52) // 1/quantum(e)
	y0, y1 := float64(*k0)+x0*inv, float64(*k1)+x1*inv                 // in quanta
	if !(math.Abs(y0) < knotMax && math.Abs(y1) < knotMax) || e == 0 {
		return false
	}
	// In units of 2^-16 quanta a knot fits in an int32; adding the dither and
	// dropping the 16 bits below the quantum rounds it at random.
	*k0 = int16((int32(y0*(1<<16)) + int32(r&0xffff)) >> 16)
	*k1 = int16((int32(y1*(1<<16)) + int32(r>>16&0xffff)) >> 16)
	return true
}

// growKnots takes the step of stepKnots when a knot outgrows the quantum, or
// there is none yet: it raises the exponent *e of the profile q to the
// smallest at which knots i0 + x0 and i1 + x1 fit (by firstRoom more for a
// first quantum), rounds the other knots to it, and sets those two. Past the
// largest quantum the knots saturate at ±knotMax; a NaN knot is 0.
func growKnots(q []int16, e *uint8, i0, i1 int, x0, x1 float64, r uint64) {
	u := quantum(*e)
	v0, v1 := float64(q[i0])*u+x0, float64(q[i1])*u+x1
	top := max(math.Abs(v0), math.Abs(v1))
	if top == 0 {
		return // no quantum yet, and still none needed
	}
	_, x := math.Frexp(top / knotMax) // top/knotMax < 2^x
	next := x + quantumBias
	if *e == 0 {
		next += firstRoom
	}
	if next > math.MaxUint8 || !(top <= math.MaxFloat64) { // or infinite, or NaN
		next = math.MaxUint8
	}
	next = max(next, 1)
	switch k := next - int(*e); {
	case *e == 0: // every knot is zero
	case k > 16:
		clear(q)
	case k > 0:
		for i, v := range q { // round half up
			q[i] = int16((int32(v) + 1<<(k-1)) >> k)
		}
	}
	*e = uint8(next)
	u = quantum(*e)
	q[i0] = toKnot(v0/u + float64(r&0xffff)/(1<<16))
	q[i1] = toKnot(v1/u + float64(r>>16&0xffff)/(1<<16))
}

// toKnot is ⌊x⌋ as a knot, saturating at ±knotMax; NaN is 0.
func toKnot(x float64) int16 {
	switch {
	case x >= knotMax:
		return knotMax
	case x <= -knotMax:
		return -knotMax
	case x == x:
		return int16(math.Floor(x))
	}
	return 0
}

// fitKnots lowers the quantum exponent *e of profile q as far as every knot
// still fits, so that a profile whose knots have shrunk since its quantum grew
// (a warm-up's transient forgotten, a daily cycle gone) regains their
// precision; a profile of zeros has no quantum.
func fitKnots(q []int16, e *uint8) {
	var top uint16 // the bits of every |knot|
	for _, v := range q {
		s := v >> 15
		top |= uint16(v ^ s - s)
	}
	if top == 0 {
		*e = 0
		return
	}
	k := min(15-bits.Len16(top), int(*e)-1) // the doublings that still fit
	if k <= 0 {
		return
	}
	*e -= uint8(k)
	for i := range q {
		q[i] <<= k
	}
}

// dither returns 64 random bits drawn from the time t (SplitMix64's finaliser
// of t ^ ditherSeed).
func dither(t int64) uint64 {
	z := uint64(t^ditherSeed) * 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
