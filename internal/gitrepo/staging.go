package gitrepo

import (
	"bytes"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// packThreshold is the number of new objects from which an update's
// objects are kept in the cache as the very pack that was pushed (one file)
// rather than as loose objects (a file each): a 500-environment batch
// writes ~2,500 objects, and creating that many files took ~0.6 s of CPU. Small
// updates stay loose, so packs accumulate only with large batches.
const packThreshold = 256

// staging holds the objects an update writes in memory, in front of the
// repository's storer: the push's pack is encoded from memory (nothing is
// read back from disk), and nothing reaches the cache until the push has
// succeeded (persist).
type staging struct {
	storer.EncodedObjectStorer
	objs  map[plumbing.Hash]plumbing.EncodedObject
	order []plumbing.Hash // in the order written: what the push sends
}

func newStaging(s storer.EncodedObjectStorer) *staging {
	return &staging{EncodedObjectStorer: s, objs: map[plumbing.Hash]plumbing.EncodedObject{}}
}

func (s *staging) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	if o.Type() == plumbing.OFSDeltaObject || o.Type() == plumbing.REFDeltaObject {
		return plumbing.ZeroHash, plumbing.ErrInvalidType
	}
	h := o.Hash()
	if _, ok := s.objs[h]; !ok {
		s.objs[h] = o
		s.order = append(s.order, h)
	}
	return h, nil
}

func (s *staging) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, ok := s.objs[h]; ok {
		if t != plumbing.AnyObject && o.Type() != t {
			return nil, plumbing.ErrObjectNotFound
		}
		return o, nil
	}
	return s.EncodedObjectStorer.EncodedObject(t, h)
}

func (s *staging) HasEncodedObject(h plumbing.Hash) error {
	if _, ok := s.objs[h]; ok {
		return nil
	}
	return s.EncodedObjectStorer.HasEncodedObject(h)
}

func (s *staging) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if o, ok := s.objs[h]; ok {
		return o.Size(), nil
	}
	return s.EncodedObjectStorer.EncodedObjectSize(h)
}

// pack encodes the staged objects as a packfile (no deltas), from memory.
func (s *staging) pack() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := packfile.NewEncoder(&buf, s, false).Encode(s.order, 0); err != nil {
		return nil, fmt.Errorf("encode pack: %w", err)
	}
	return buf.Bytes(), nil
}

// persist writes the staged objects into the repository's storer: as the
// pack (already encoded for the push) when there are many and the storer
// takes packs, otherwise one loose object each.
func (s *staging) persist(pack []byte) error {
	if pw, ok := s.EncodedObjectStorer.(storer.PackfileWriter); ok && len(s.order) >= packThreshold && pack != nil {
		w, err := pw.PackfileWriter()
		if err != nil {
			return err
		}
		if _, err := w.Write(pack); err != nil {
			_ = w.Close()
			return err
		}
		return w.Close()
	}
	for _, h := range s.order {
		if _, err := s.EncodedObjectStorer.SetEncodedObject(s.objs[h]); err != nil {
			return err
		}
	}
	return nil
}
