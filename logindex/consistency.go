package logindex

import (
	"context"
	"fmt"

	"github.com/blevesearch/bleve/v2"
)

// checkConsistency checks, after waiting for indexing, that every partition's
// documents are its blocks and that the blocks hold its records, in number.
// Tests run it before closing.
func (ix *Index) checkConsistency() error {
	if err := ix.Flush(context.Background()); err != nil {
		return err
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for day, p := range ix.parts {
		if !p.acquire() {
			continue
		}
		var docs, indexed uint64
		for k, sh := range p.shards {
			n, err := sh.DocCount()
			if err != nil {
				p.release()
				return fmt.Errorf("cannot count documents of shard %d of %s: %w", k, dayDirName(day), err)
			}
			docs += n
			// Every block has one service term, counting its records.
			m, err := fieldTotal(sh, fieldService)
			if err != nil {
				p.release()
				return fmt.Errorf("cannot count records of shard %d of %s: %w", k, dayDirName(day), err)
			}
			indexed += m
		}
		blocks, recs, err := p.countRecords()
		p.release()
		if err != nil {
			return err
		}
		if docs != blocks || indexed != recs {
			return fmt.Errorf("partition %s: %d documents in the shards holding %d records, %d blocks of %d records in the record log", dayDirName(day), docs, indexed, blocks, recs)
		}
	}
	return nil
}

// countRecords counts the blocks and records of the record log by reading every
// frame.
func (p *partition) countRecords() (blocks, recs uint64, err error) {
	size := p.size.Load()
	for off := int64(headerSize); off < size; {
		fr, err := readFrame(p.f, p.path, off, size)
		if err != nil {
			return 0, 0, err
		}
		bl, err := fr.blockList()
		if err != nil {
			return 0, 0, err
		}
		blocks += uint64(len(bl))
		recs += uint64(len(fr.recs))
		off = fr.end
	}
	return blocks, recs, nil
}

// fieldTotal sums the frequencies of every term of field in sh.
func fieldTotal(sh bleve.Index, field string) (uint64, error) {
	adv, err := sh.Advanced()
	if err != nil {
		return 0, err
	}
	r, err := adv.Reader()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	sr := &shardReader{r: r}
	terms, err := sr.fieldTerms(field)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, t := range terms {
		l, err := sr.termList(context.Background(), field, t)
		if err != nil {
			return 0, err
		}
		for _, c := range l {
			n += uint64(c.n)
		}
	}
	return n, nil
}
