package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// heldFromOS is the heap memory the process holds from the OS.
func heldFromOS() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapSys - m.HeapReleased
}

// TestMetaWebhookBodiesAreBoundedAndTheirMemoryGivenBack: a webhook body
// over Meta's 3 MB is refused, announced or chunked; a burst of unsigned
// bodies just under it is refused for its signature, and the memory they
// took is given back to the OS within seconds instead of staying with the
// process.
func TestMetaWebhookBodiesAreBoundedAndTheirMemoryGivenBack(t *testing.T) {
	h := newHarness(t)
	url := h.base + "/webhooks/meta"
	over := bytes.Repeat([]byte("x"), 3<<20+1)
	resp, err := http.Post(url, "application/json", bytes.NewReader(over))
	must(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("a body of 3 MiB + 1 byte: %d, want 413", resp.StatusCode)
	}
	// Chunked: no length announced, refused once 3 MiB were read.
	conn, err := net.Dial("tcp", h.srv.Addr())
	must(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/meta HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("y", 64<<10)
	go func() {
		for range 64 { // 4 MiB
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
		fmt.Fprintf(conn, "0\r\n\r\n")
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, " 413 ") {
		t.Fatalf("a chunked body over 3 MiB: %q %v, want 413", status, err)
	}

	runtime.GC()
	debug.FreeOSMemory()
	base := heldFromOS()
	body := append([]byte(`{"object":"whatsapp_business_account","entry":[],"pad":"`), bytes.Repeat([]byte("z"), 3<<20-200)...)
	body = append(body, `"}`...)
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 401 && c != 403 {
			t.Fatalf("an unsigned webhook answered %d", c)
		}
	}
	body = nil
	deadline := time.Now().Add(15 * time.Second)
	for heldFromOS() > base+24<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("after 40 unsigned 3 MB posts the process still holds %d MiB more than before",
				(heldFromOS()-base)>>20)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
