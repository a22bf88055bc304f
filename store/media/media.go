// Package media keeps uploaded media files on disk, content-addressed: a
// file is named by the SHA-256 of its bytes, so the same bytes uploaded
// twice are stored once. A file is written to a temporary name in the same
// folder tree and renamed into place once complete, so a crash never leaves
// a partial file under a real name.
package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Sentinel errors callers act on.
var (
	// ErrTooLarge says Put read more bytes than its limit; nothing was kept.
	ErrTooLarge = errors.New("media: file is larger than the limit")
	// ErrNotFound says no file has that SHA-256.
	ErrNotFound = errors.New("media: no such file")
	// ErrBadSum says a name is not 64 lower-case hex digits.
	ErrBadSum = errors.New("media: not a sha256 hex digest")
)

// tmpDir is the folder of files being written, under the root: on the
// same file system as their final place, so that rename is atomic.
const tmpDir = "tmp"

// staleTemp is how old a temporary file must be for New to remove it: a
// writer that takes longer than that has died.
const staleTemp = 24 * time.Hour

// Store is a folder of content-addressed files. It is safe for concurrent
// use, by several processes sharing the folder too.
type Store struct {
	dir string
}

// Blob is a stored file.
type Blob struct {
	// SHA256 is the lower-case hex digest of the bytes, the file's name.
	SHA256 string
	Size   int64
	// Existed says the same bytes were stored already (nothing was written).
	Existed bool
}

// New opens (creating it if needed) the store in dir, and removes the
// temporary files writers left behind more than a day ago.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("media store: no folder given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("media store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, tmpDir), 0o750); err != nil {
		return nil, fmt.Errorf("media store: %w", err)
	}
	s := &Store{dir: abs}
	s.removeStale(time.Now().Add(-staleTemp))
	return s, nil
}

// Dir is the store's folder, absolute.
func (s *Store) Dir() string { return s.dir }

// removeStale removes temporary files last written before cutoff. Errors
// are ignored: a file it cannot remove is retried at the next start.
func (s *Store) removeStale(cutoff time.Time) {
	entries, err := os.ReadDir(filepath.Join(s.dir, tmpDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(s.dir, tmpDir, e.Name()))
		}
	}
}

// path is where the file of sum lives: two levels of fan-out keep folders
// small ("ab/cd/abcd…").
func (s *Store) path(sum string) string {
	return filepath.Join(s.dir, sum[:2], sum[2:4], sum)
}

// ValidSum reports whether sum is a SHA-256 hex digest as Put names files.
func ValidSum(sum string) bool {
	if len(sum) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(sum); i++ {
		if c := sum[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Put stores what r yields, at most limit bytes (ErrTooLarge past it, and
// nothing is kept). Bytes already stored are not written again.
func (s *Store) Put(r io.Reader, limit int64) (Blob, error) {
	return s.PutChecked(r, limit, nil)
}

// PutChecked is Put with a check of the bytes before they are kept: check
// reads the complete file (size bytes) and its error, returned as it is,
// keeps nothing. Bytes from elsewhere (a guest's upload) are judged by
// their content before a name in the store points at them.
func (s *Store) PutChecked(r io.Reader, limit int64, check func(f io.ReaderAt, size int64) error) (Blob, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "put-*")
	if err != nil {
		return Blob{}, fmt.Errorf("media put: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, limit+1))
	if err != nil {
		return Blob{}, fmt.Errorf("media put: %w", err)
	}
	if n > limit {
		return Blob{}, ErrTooLarge
	}
	if check != nil {
		if err := check(tmp, n); err != nil {
			return Blob{}, err
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	b := Blob{SHA256: sum, Size: n}
	final := s.path(sum)
	if info, err := os.Stat(final); err == nil && info.Size() == n {
		b.Existed = true
		return b, nil
	}
	// The bytes reach the disk before the name does: after a crash a
	// real name never points at a partial file.
	if err := tmp.Sync(); err != nil {
		return Blob{}, fmt.Errorf("media put: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Blob{}, fmt.Errorf("media put: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return Blob{}, fmt.Errorf("media put: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return Blob{}, fmt.Errorf("media put: %w", err)
	}
	// Two writers of the same bytes both rename: the second replaces the
	// first's file with identical content, which readers cannot tell.
	if err := os.Rename(tmp.Name(), final); err != nil {
		return Blob{}, fmt.Errorf("media put: %w", err)
	}
	done = true
	syncDir(filepath.Dir(final))
	return b, nil
}

// syncDir makes a rename in dir durable where the system supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Open opens the file of sum for reading; the caller closes it.
func (s *Store) Open(sum string) (*os.File, error) {
	if !ValidSum(sum) {
		return nil, ErrBadSum
	}
	f, err := os.Open(s.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("media open: %w", err)
	}
	return f, nil
}

// Stat returns the size of the file of sum.
func (s *Store) Stat(sum string) (int64, error) {
	if !ValidSum(sum) {
		return 0, ErrBadSum
	}
	info, err := os.Stat(s.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("media stat: %w", err)
	}
	return info.Size(), nil
}

// Count returns how many files the store holds (temporary ones aside).
// It walks the folder: for tests and tools, not for requests.
func (s *Store) Count() (int, error) {
	n := 0
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == tmpDir && filepath.Dir(p) == s.dir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && ValidSum(d.Name()) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("media count: %w", err)
	}
	return n, nil
}
