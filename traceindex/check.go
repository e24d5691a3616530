package traceindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check verifies that every index entry of every partition refers to a stored
// block and to a trace inside it, and that every block header decodes. It reads
// every key but decompresses no payload; it returns the first problem found as a
// *CorruptionError.
func (ix *Index) Check(ctx context.Context) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	for _, p := range ix.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.db.View(func(tx *bolt.Tx) error { return p.check(tx) })
		p.maybeRelease(true) // every page was read
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *partition) check(tx *bolt.Tx) error {
	blocks := tx.Bucket(bucketBlocks)
	headers := map[uint64]blockHeader{}
	err := blocks.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return corrupt(p, bucketBlocks, k, errors.New("bad key length"))
		}
		h, err := parseBlockHeader(v, maxBlockRaw)
		if err != nil {
			return corrupt(p, bucketBlocks, k, err)
		}
		headers[be64(k)] = h
		return nil
	})
	if err != nil {
		return err
	}
	block := func(bucket, k []byte, seq uint64, ord uint32) (blockHeader, error) {
		h, ok := headers[seq]
		if !ok {
			return h, corrupt(p, bucket, k, fmt.Errorf("refers to missing block %d", seq))
		}
		if int(ord) >= h.traces() {
			return h, corrupt(p, bucket, k, fmt.Errorf("refers to trace %d of %d in block %d", ord, h.traces(), seq))
		}
		return h, nil
	}
	nTime := 0
	err = tx.Bucket(bucketBTime).ForEach(func(k, v []byte) error {
		nTime++
		if len(k) != 16 || len(v) != 8 {
			return corrupt(p, bucketBTime, k, errors.New("bad key or value length"))
		}
		_, err := block(bucketBTime, k, be64(k[8:]), 0)
		return err
	})
	if err != nil {
		return err
	}
	if nTime != len(headers) {
		return corrupt(p, bucketBTime, nil, fmt.Errorf("%d time entries for %d blocks", nTime, len(headers)))
	}
	err = tx.Bucket(bucketTraces).ForEach(func(k, v []byte) error {
		if len(k) != 24 {
			return corrupt(p, bucketTraces, k, errors.New("bad key length"))
		}
		pc, err := decodePiece(v)
		if err != nil {
			return corrupt(p, bucketTraces, k, err)
		}
		h, err := block(bucketTraces, k, be64(k[16:]), pc.ord)
		if err != nil {
			return err
		}
		if !bytes.Equal(h.ids[16*pc.ord:16*pc.ord+16], k[:16]) {
			return corrupt(p, bucketTraces, k, fmt.Errorf("trace %d of block %d has another id", pc.ord, be64(k[16:])))
		}
		if tx.Bucket(bucketSvc).Get(u32(nil, pc.svc)) == nil || tx.Bucket(bucketOp).Get(opPrefix(pc.svc, pc.op)) == nil {
			return corrupt(p, bucketTraces, k, fmt.Errorf("unknown service %d or operation %d", pc.svc, pc.op))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, bucket := range [][]byte{bucketOpIdx, bucketErrIdx} {
		err = tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			base, seq, ok := splitTimeSeq(k)
			if !ok {
				return corrupt(p, bucket, k, errors.New("short key"))
			}
			var ierr error
			err := scanPosting(v, base, func(int64, int64, bool) bool { return true }, func(ord uint32, _ int64) bool {
				_, ierr = block(bucket, k, seq, ord)
				return ierr == nil
			})
			if err != nil {
				return corrupt(p, bucket, k, err)
			}
			return ierr
		})
		if err != nil {
			return err
		}
	}
	return tx.Bucket(bucketAttrIdx).ForEach(func(k, v []byte) error {
		_, seq, ok := splitTimeSeq(k)
		if !ok {
			return corrupt(p, bucketAttrIdx, k, errors.New("short key"))
		}
		var ierr error
		err := scanOrds(v, func(ord uint32) {
			if _, err := block(bucketAttrIdx, k, seq, ord); err != nil && ierr == nil {
				ierr = err
			}
		})
		if err != nil {
			return corrupt(p, bucketAttrIdx, k, err)
		}
		return ierr
	})
}
