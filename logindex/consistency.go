package logindex

import (
	"context"
	"fmt"
)

// checkConsistency checks, after waiting for indexing, that every shard has
// applied its partition's whole record log and that every partition's documents
// equal its records in number. Tests run it before closing.
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
		var docs uint64
		for k, sh := range p.shards {
			n, err := sh.DocCount()
			if err != nil {
				p.release()
				return fmt.Errorf("cannot count documents of shard %d of %s: %w", k, dayDirName(day), err)
			}
			docs += n
		}
		recs, err := p.countRecords()
		p.release()
		if err != nil {
			return err
		}
		if docs != recs {
			return fmt.Errorf("partition %s: %d documents in the shards, %d records in the record log", dayDirName(day), docs, recs)
		}
	}
	return nil
}

// countRecords counts the records of the record log by reading every frame.
func (p *partition) countRecords() (uint64, error) {
	size := p.size.Load()
	var n uint64
	for off := int64(headerSize); off < size; {
		fr, err := readFrame(p.f, p.path, off, size)
		if err != nil {
			return 0, err
		}
		n += uint64(len(fr.recs))
		off = fr.end
	}
	return n, nil
}
