package incident

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	bolt "go.etcd.io/bbolt"

	"outpost/internal/snapshot"
)

// The file: bucket "incidents", key the incident number as 8 bytes big-endian,
// value the Incident as JSON.

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// load reads every incident.
func (m *Manager) load() error {
	err := m.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketIncidents)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("key %x: want 8 bytes, got %d", k, len(k))
			}
			inc := new(Incident)
			if err := json.Unmarshal(v, inc); err != nil {
				return fmt.Errorf("incident %d: %w", binary.BigEndian.Uint64(k), err)
			}
			m.incidents[inc.ID] = inc
			m.nextID = max(m.nextID, inc.ID)
			if prev := m.incidents[m.byGroup[inc.Group]]; prev == nil || prev.ID < inc.ID {
				m.byGroup[inc.Group] = inc.ID
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("cannot load incidents: %w", err)
	}
	return nil
}

// flushLocked commits the incidents changed since the last flush in one
// transaction.
func (m *Manager) flushLocked() error {
	if len(m.dirty) == 0 {
		return nil
	}
	err := m.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncidents)
		for id := range m.dirty {
			inc := m.incidents[id]
			if inc == nil {
				if err := b.Delete(key(id)); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(inc)
			if err != nil {
				return err
			}
			if err := b.Put(key(id), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	clear(m.dirty)
	return nil
}

func (m *Manager) deleteLocked(inc *Incident) {
	delete(m.incidents, inc.ID)
	if m.byGroup[inc.Group] == inc.ID {
		delete(m.byGroup, inc.Group)
	}
	m.dirty[inc.ID] = true
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// Snapshot adds incidents.db as of one read transaction, for backups.
func (m *Manager) Snapshot(ctx context.Context, add snapshot.AddFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.db.View(func(tx *bolt.Tx) error {
		return add("incidents.db", tx.Size(), func(w io.Writer) error {
			_, err := tx.WriteTo(w)
			return err
		})
	})
}
