package tsdb

// The block and chunk codecs with working memory of their own, for tests that
// encode or decode one thing.

func appendFloatBlock(dst []byte, ts, sts []int64, vs []float64) []byte {
	var e blockEncoder
	return e.appendFloatBlock(dst, ts, sts, vs, false)
}

func decodeFloatBlock(dst []sample, b []byte) ([]sample, error) {
	var d blockDecoder
	return d.decodeFloatBlock(dst, b)
}

func appendSeriesChunk(dst []byte, ss []sample) []byte {
	var e blockEncoder
	return e.appendSeriesChunk(dst, ss)
}
