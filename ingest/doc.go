// Package ingest owns the protocol edge: the OTLP/gRPC and OTLP/HTTP receivers.
//
// It decodes requests with pdata (protobuf and JSON, gzip), enforces the limits that
// keep a bad or hostile client from hurting the process (compressed and
// decompressed body size, concurrent requests, attributes per record), checks the
// optional bearer token, hands decoded batches to a Consumer (the store's write
// path), and answers as the OTLP specification says: success, partial success with
// rejected counts, HTTP 400 / gRPC InvalidArgument for malformed payloads (not
// retryable), 413 for bodies over the limit, and 429/503 with Retry-After (gRPC
// ResourceExhausted/Unavailable with RetryInfo) under back-pressure.
//
// A protobuf metrics request that passes those checks as it is is not decoded
// whole: otlpwire.Scan checks it on the wire and the consumer reads its gauges,
// sums and explicit-bucket histograms so (WireConsumer), which costs a fraction
// of decoding them into pdata.
//
// It owns no storage.
package ingest
