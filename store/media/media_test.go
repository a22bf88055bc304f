package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// tmpFiles lists what is left in the store's temporary folder.
func tmpFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPutStoresBytesUnderTheirSHA256(t *testing.T) {
	s := newStore(t)
	data := []byte("\x89PNG\r\n\x1a\n a room key card")
	b, err := s.Put(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if b.SHA256 != sum(data) || b.Size != int64(len(data)) || b.Existed {
		t.Fatalf("blob %+v", b)
	}
	f, err := s.Open(b.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %q", got)
	}
	if n, err := s.Stat(b.SHA256); err != nil || n != int64(len(data)) {
		t.Fatalf("stat %d %v", n, err)
	}
	if names := tmpFiles(t, s); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
}

func TestPutStoresTheSameBytesOnce(t *testing.T) {
	s := newStore(t)
	data := bytes.Repeat([]byte("guest guide "), 1000)
	first, err := s.Put(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Put(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Existed || again.SHA256 != first.SHA256 {
		t.Fatalf("second put %+v, first %+v", again, first)
	}
	// Concurrent writers of one file end with one intact file.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Put(bytes.NewReader([]byte("same bytes, many writers")), 1<<20); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, err := s.Count(); err != nil || n != 2 {
		t.Fatalf("%d files (%v), want 2", n, err)
	}
	if names := tmpFiles(t, s); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
}

func TestPutOverTheLimitKeepsNothing(t *testing.T) {
	s := newStore(t)
	data := bytes.Repeat([]byte{7}, 101)
	if _, err := s.Put(bytes.NewReader(data), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("101 bytes with a limit of 100: %v", err)
	}
	if _, err := s.Stat(sum(data)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused file is stored: %v", err)
	}
	if names := tmpFiles(t, s); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
	if b, err := s.Put(bytes.NewReader(data[:100]), 100); err != nil || b.Size != 100 {
		t.Fatalf("exactly the limit: %+v %v", b, err)
	}
}

// failingReader yields some bytes, then an error, as a client that hangs up.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(r.n, len(p))
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestPutThatFailsHalfwayLeavesNoFile(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(&failingReader{n: 5000}, 1<<20); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("got %v", err)
	}
	if n, _ := s.Count(); n != 0 {
		t.Fatalf("%d files after a failed put", n)
	}
	if names := tmpFiles(t, s); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
}

func TestOpenRefusesNamesThatAreNotDigests(t *testing.T) {
	s := newStore(t)
	for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("a", 62) + "/x"} {
		if _, err := s.Open(bad); !errors.Is(err, ErrBadSum) {
			t.Fatalf("Open(%q): %v", bad, err)
		}
		if _, err := s.Stat(bad); !errors.Is(err, ErrBadSum) {
			t.Fatalf("Stat(%q): %v", bad, err)
		}
	}
	if _, err := s.Open(strings.Repeat("a", 64)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown digest: %v", err)
	}
}

func TestNewRemovesStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, tmpDir, "put-crashed")
	fresh := filepath.Join(dir, tmpDir, "put-writing")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err != nil {
		t.Fatal(err)
	}
	if names := tmpFiles(t, s); len(names) != 1 || names[0] != "put-writing" {
		t.Fatalf("temporary files after restart: %v", names)
	}
	if _, err := New(""); err == nil {
		t.Fatal("a store without a folder was made")
	}
}

// TestPutCheckedKeepsOnlyWhatPassesItsCheck: the check sees the whole
// file, and its refusal keeps nothing, not even a temporary file.
func TestPutCheckedKeepsOnlyWhatPassesItsCheck(t *testing.T) {
	s := newStore(t)
	errNotPDF := errors.New("not a PDF")
	isPDF := func(f io.ReaderAt, size int64) error {
		b := make([]byte, size)
		if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !bytes.HasPrefix(b, []byte("%PDF-")) || !bytes.HasSuffix(b, []byte("%%EOF")) {
			return errNotPDF
		}
		return nil
	}
	tests := []struct {
		name string
		data string
		want error
	}{
		{"a PDF", "%PDF-1.4 body %%EOF", nil},
		{"a JPEG", "\xff\xd8\xff\xe0 body", errNotPDF},
		{"a PDF cut short", "%PDF-1.4 body", errNotPDF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.PutChecked(strings.NewReader(tc.data), 1<<20, isPDF)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			_, serr := s.Stat(sum([]byte(tc.data)))
			if stored := serr == nil; stored != (tc.want == nil) || tc.want == nil && b.SHA256 != sum([]byte(tc.data)) {
				t.Fatalf("stored %v (%v), blob %+v", stored, serr, b)
			}
			if names := tmpFiles(t, s); len(names) != 0 {
				t.Fatalf("temporary files left: %v", names)
			}
		})
	}
}
