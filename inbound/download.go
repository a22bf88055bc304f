package inbound

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/media"
	"github.com/wagate/wagate/store/redis"
)

// The media guests send (image, document, audio, video, sticker) are
// downloaded by the inbound role, never on the path that records their
// message: the message is recorded at once with a media id of wagate's
// and a download job queued in the same Redis call (inbound.lua); the role
// claims due jobs, fetches the file from the provider with the number's
// account, judges its bytes and keeps them in the media store under the
// tenant, then writes the media record and the media_received event. A
// download that fails for a while (the provider down) is tried again
// later, with backoff, a bounded number of times; one that cannot succeed
// (too large, not what its type says) fails at once. Until a record
// exists the media is pending.

// MediaFetcher downloads a file a guest sent to a business number, from
// the provider that holds it (provider/meta's MediaFetcher). An error
// wrapping provider.ErrMediaTooLarge, or a *provider.Error of class
// ClassPermanent, will not go away by trying again; any other may.
type MediaFetcher interface {
	FetchMedia(ctx context.Context, phoneNumberID, mediaID string, maxBytes int64) (*provider.MediaDownload, error)
}

// DownloadConfig configures the inbound role's downloads of guests' media.
type DownloadConfig struct {
	// Workers is how many downloads run at once per process (4).
	Workers int
	// Poll is how often due downloads are looked for (250 ms); a message
	// with media recorded by this process wakes the loop at once.
	Poll time.Duration
	// Lease is how long a claimed download may take before another
	// process takes it for dead and does it (4 min: longer than a fetch).
	Lease time.Duration
	// MaxAttempts bounds the tries of a download that keeps failing (10).
	MaxAttempts int
	// RetryBase and RetryMax bound the wait before a new try: RetryBase
	// doubled per try, at most RetryMax, with jitter (5 s, 15 min: ten
	// tries span about an hour).
	RetryBase, RetryMax time.Duration
}

func (c *DownloadConfig) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Lease <= 0 {
		c.Lease = 4 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 15 * time.Minute
	}
}

// Why a download failed (media_failure_code).
const (
	failTooLarge      = "too_large"
	failEmpty         = "empty_file"
	failMismatch      = "type_mismatch"
	failUnsupported   = "unsupported_format"
	failNotFound      = "not_found"
	failDownload      = "download_failed"
	failNotConfigured = "not_configured"
)

// mediaJob is a download, as queued (a member of a shard's mediaq).
type mediaJob struct {
	// Conv is the conversation, set by inbound.lua where it is decided:
	// omitted until then, so that the script's "c" is the only one.
	Conv            string `json:"c,omitempty"`
	MediaID         string `json:"id"`
	ProviderMediaID string `json:"pm"`
	PhoneNumberID   string `json:"pn"`
	Tenant          string `json:"t"`
	Sender          string `json:"f"`
	Guest           string `json:"g"`
	MessageID       string `json:"w"`
	Type            string `json:"ty"`
	// MIME is the type the provider stated; the stored one is the bytes'.
	MIME     string `json:"mt,omitempty"`
	Filename string `json:"fn,omitempty"`
	Caption  string `json:"cap,omitempty"`
	Name     string `json:"nm,omitempty"`
	ReplyTo  string `json:"ctx,omitempty"`
	AtMS     int64  `json:"at"`
	// Attempts counts the tries that failed; Error is the last failure.
	Attempts int    `json:"a"`
	Error    string `json:"e,omitempty"`
}

// downloads are the inbound role's media downloads.
type downloads struct {
	cfg      DownloadConfig
	fetchers map[string]MediaFetcher
	// kick wakes the loop: a message with media was recorded, or a
	// download ended and its worker is free.
	kick chan struct{}
}

func (d *downloads) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// mediaIdle is the longest the download loop waits between looks when
// none was due (a download queued by another process that does not do it
// itself: at most this late).
const mediaIdle = 2 * time.Second

// downloadLoop claims due downloads while workers are free and runs them.
// On shutdown the downloads under way are abandoned and put back due at
// once, their try not counted.
func (p *Processor) downloadLoop() {
	defer p.wg.Done()
	ctx, cancel := p.runCtx()
	defer cancel()
	d := &p.dl
	// Every Poll while downloads are found; else twice as long each time
	// up to mediaIdle: what this process records kicks the loop at once,
	// and a retry waits seconds anyway.
	wait := d.cfg.Poll
	t := time.NewTimer(wait)
	defer t.Stop()
	var running sync.WaitGroup
	defer running.Wait()
	free := make(chan struct{}, d.cfg.Workers)
	for range d.cfg.Workers {
		free <- struct{}{}
	}
	failing := false
	for {
		if n := len(free); n > 0 {
			jobs, err := p.store.ClaimMediaJobs(ctx, n, d.cfg.Lease)
			if ctx.Err() != nil {
				return
			}
			if (err != nil) != failing {
				failing = err != nil
				if failing {
					p.log.Warn("claiming media downloads fails; retrying", "err", err)
				} else {
					p.log.Info("claiming media downloads works again")
				}
			}
			for _, j := range jobs {
				<-free
				running.Add(1)
				go func() {
					defer running.Done()
					p.download(ctx, j)
					free <- struct{}{}
					d.wake()
				}()
			}
			if err == nil && len(jobs) == n {
				continue // more may be due
			}
			if len(jobs) > 0 || err != nil {
				wait = d.cfg.Poll
			} else {
				wait = min(2*wait, max(mediaIdle, d.cfg.Poll))
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
			wait = d.cfg.Poll
		}
	}
}

// download does claimed job j: fetch, judge, keep, record, notify; or
// retry later; or fail for good.
func (p *Processor) download(ctx context.Context, j redis.MediaJob) {
	var job mediaJob
	if err := json.Unmarshal([]byte(j.Member), &job); err != nil || job.MediaID == "" || job.Conv == "" {
		// Written by this code only: a job no one can do is dropped.
		p.log.Error("dropping a media download that does not decode", "job", j.Member, "err", err)
		_ = p.store.DropMediaJob(context.WithoutCancel(ctx), j)
		return
	}
	rec, err := p.store.Media(ctx, job.MediaID)
	switch {
	case err == nil && rec.TenantID == job.Tenant:
		// An earlier try recorded the outcome and died before its event.
	case err != nil && !errors.Is(err, redis.ErrMediaNotFound):
	default:
		rec, err = p.fetchAndKeep(ctx, &job)
		var fail *downloadFailure
		if errors.As(err, &fail) {
			rec, err = failedRecord(&job, fail.code, fail.detail), nil
		}
		if err == nil {
			err = p.store.PutMedia(ctx, rec, p.media.Retention)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: put it back for the next process, uncounted.
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := p.store.RetryMediaJob(bg, j, j.Member, time.Now()); err != nil {
				p.log.Warn("media download not given back; it is taken again when its lease passes", "media_id", job.MediaID, "err", err)
			}
			return
		}
		var after time.Duration
		var pe *provider.Error
		if errors.As(err, &pe) {
			after = pe.RetryAfter
		}
		p.retryDownload(ctx, j, &job, err, after)
		return
	}
	p.finishDownload(ctx, j, &job, rec)
}

// failedRecord is the record of job's media that could not be had.
func failedRecord(job *mediaJob, code, detail string) *redis.MediaRecord {
	return &redis.MediaRecord{ID: job.MediaID, TenantID: job.Tenant, Type: job.Type, Filename: job.Filename, CreatedMS: time.Now().UnixMilli(),
		Source: "in", ProviderMediaID: job.ProviderMediaID, Status: redis.MediaFailed, Reason: code, Detail: detail}
}

// downloadFailure is a download that cannot succeed, and why.
type downloadFailure struct{ code, detail string }

func (f *downloadFailure) Error() string { return f.code + ": " + f.detail }

func failed(code, format string, args ...any) error {
	return &downloadFailure{code: code, detail: fmt.Sprintf(format, args...)}
}

// fetchAndKeep downloads job's file and keeps it, returning its record
// (not written yet). A *downloadFailure is for good; other errors are
// worth a retry.
func (p *Processor) fetchAndKeep(ctx context.Context, job *mediaJob) (*redis.MediaRecord, error) {
	f := p.dl.fetchers[job.PhoneNumberID]
	if f == nil || p.media.Files == nil {
		return nil, failed(failNotConfigured, "this gateway does not download media for this number (no media folder or no provider account)")
	}
	limit := p.media.Limits.Of(job.Type, true)
	if limit == 0 {
		return nil, failed(failUnsupported, "%s is not a media type", job.Type)
	}
	dl, err := f.FetchMedia(ctx, job.PhoneNumberID, job.ProviderMediaID, limit)
	if err != nil {
		switch {
		case errors.Is(err, provider.ErrMediaTooLarge):
			return nil, failed(failTooLarge, "the %s is larger than %d bytes, WhatsApp's limit", job.Type, limit)
		case provider.ClassOf(err) == provider.ClassPermanent:
			return nil, failed(failNotFound, "the provider will not give the file: %v", err)
		}
		return nil, err
	}
	defer dl.Body.Close()
	var format mediakit.Format
	blob, err := p.media.Files.PutChecked(dl.Body, limit, func(r io.ReaderAt, size int64) error {
		if size == 0 {
			return failed(failEmpty, "the file is empty")
		}
		format = mediakit.Office(mediakit.Detect(r, size), job.Filename)
		return judgeInbound(job.Type, format)
	})
	switch {
	case errors.Is(err, media.ErrTooLarge):
		return nil, failed(failTooLarge, "the %s is larger than %d bytes, WhatsApp's limit", job.Type, limit)
	case err != nil:
		return nil, err
	}
	if want := dl.SHA256; len(want) == 64 && isHex(want) && !strings.EqualFold(want, blob.SHA256) {
		// What arrived is not what the provider says it holds: a try may
		// go better; the stored bytes are named by their own digest.
		return nil, fmt.Errorf("the file's sha256 %s is not the provider's %s", blob.SHA256, want)
	}
	mt := format.MIME
	if !format.Known() {
		mt = "application/octet-stream"
	}
	name := job.Filename
	if name == "" {
		name = job.Type + "." + format.FileExt()
	}
	return &redis.MediaRecord{ID: job.MediaID, TenantID: job.Tenant, SHA256: blob.SHA256, MIME: mt, Type: job.Type, Size: blob.Size,
		Filename: name, CreatedMS: time.Now().UnixMilli(), Source: "in", ProviderMediaID: job.ProviderMediaID}, nil
}

// judgeInbound checks a guest's file of media type t by its format: an
// image, audio or video file must be one by its bytes (whatever codec:
// the gateway keeps it, it does not send it), a sticker a WebP; a
// document may be anything but a program.
func judgeInbound(t string, f mediakit.Format) error {
	family, _, _ := strings.Cut(f.MIME, "/")
	switch t {
	case "document":
		if f.MIME == "application/x-msdownload" || f.MIME == "application/x-executable" {
			return failed(failUnsupported, "the document is a %s: %s", f.Name, f.Why)
		}
		return nil
	case "sticker":
		if f.MIME == mediakit.MIMEWebP {
			return nil
		}
	case "image", "audio", "video":
		if family == t {
			return nil
		}
	}
	if !f.Known() {
		return failed(failMismatch, "the %s's bytes are of no format known to be one", t)
	}
	return failed(failMismatch, "the %s is a %s (%s) by its bytes", t, f.Name, f.MIME)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// retryDownload counts a failed try of job and puts it back, due after
// the backoff (or after, when the provider asked for longer); past the
// last try it fails for good.
func (p *Processor) retryDownload(ctx context.Context, j redis.MediaJob, job *mediaJob, err error, after time.Duration) {
	job.Attempts++
	job.Error = err.Error()
	if job.Attempts >= p.dl.cfg.MaxAttempts {
		rec := failedRecord(job, failDownload, fmt.Sprintf("no download after %d tries; the last: %s", job.Attempts, job.Error))
		if err := p.store.PutMedia(ctx, rec, p.media.Retention); err != nil {
			p.log.Warn("media download: failure not recorded; tried again when its lease passes", "media_id", job.MediaID, "err", err)
			return
		}
		p.finishDownload(ctx, j, job, rec)
		return
	}
	p.m.downloads.WithLabelValues("retry").Inc()
	wait := max(p.backoff(job.Attempts), after)
	next, _ := json.Marshal(job)
	if err := p.store.RetryMediaJob(ctx, j, string(next), time.Now().Add(wait)); err != nil {
		p.log.Warn("media download: retry not scheduled; tried again when its lease passes", "media_id", job.MediaID, "err", err)
		return
	}
	p.log.Info("media download failed; trying again later", "media_id", job.MediaID, "attempt", job.Attempts, "in", wait, "err", job.Error)
}

// backoff is the wait after the n-th failed try: exponential, capped,
// with full jitter in its upper half.
func (p *Processor) backoff(n int) time.Duration {
	d := p.dl.cfg.RetryBase
	for i := 1; i < n && d < p.dl.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, p.dl.cfg.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// finishDownload writes the media_received event of job, whose outcome
// rec records, and removes the job, in one call.
func (p *Processor) finishDownload(ctx context.Context, j redis.MediaJob, job *mediaJob, rec *redis.MediaRecord) {
	d := inboundData{MessageID: job.MessageID, MessageType: job.Type, MessageContent: job.Caption, GuestName: job.Name,
		ReplyTo: job.ReplyTo, Timestamp: rfc3339(job.AtMS),
		Media: &mediakit.Attachment{ID: job.MediaID, ProviderMediaID: job.ProviderMediaID, MimeType: job.MIME, Filename: job.Filename, Caption: job.Caption}}
	p.media.Link(&d.Access, d.Media, rec, job.Tenant, job.AtMS, p.media.URLTTL)
	data, _ := json.Marshal(&d)
	err := p.store.FinishMediaJob(ctx, j, &redis.MediaNotice{Kind: message.EventMediaReceived, TenantID: job.Tenant, Sender: job.Sender,
		Guest: job.Guest, ConversationID: job.Conv, AtMS: time.Now().UnixMilli(), Data: data})
	if err != nil {
		p.log.Warn("media download: event not written; written when its lease passes", "media_id", job.MediaID, "err", err)
		return
	}
	p.m.downloads.WithLabelValues(d.MediaStatus).Inc()
	if d.MediaStatus == mediakit.StatusFailed {
		p.log.Warn("media download failed", "media_id", job.MediaID, "code", d.MediaFailureCode, "reason", d.MediaFailureReason)
	}
}
