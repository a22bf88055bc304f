package ingest

import (
	"bytes"
	"strings"
	"testing"
)

func detectBytes(b []byte) mediaFormat { return detectMedia(bytes.NewReader(b), int64(len(b))) }

func TestDetectMediaByBytes(t *testing.T) {
	f := func(name string, data []byte, mime, kind string) {
		t.Helper()
		got := detectBytes(data)
		if got.MIME != mime || got.Kind != kind {
			t.Fatalf("%s: detected %+v, want %s as %q", name, got, mime, kind)
		}
		if mime != "" && kind == "" && got.Why == "" {
			t.Fatalf("%s: refused without a reason", name)
		}
	}
	f("png", samplePNG(t), "image/png", "image")
	f("jpeg", sampleJPEG(t), "image/jpeg", "image")
	f("webp", sampleWebP(), "image/webp", "sticker")
	f("pdf", samplePDF(), "application/pdf", "document")
	f("doc", sampleOLE("WordDocument", "\x05SummaryInformation", "1Table"), "application/msword", "document")
	f("xls", sampleOLE("Workbook", "\x05SummaryInformation"), "application/vnd.ms-excel", "document")
	f("xls 5.0", sampleOLE("Book"), "application/vnd.ms-excel", "document")
	f("ppt", sampleOLE("PowerPoint Document", "Current User"), "application/vnd.ms-powerpoint", "document")
	f("ole without office streams", sampleOLE("Contents"), "application/x-ole-storage", "")
	f("docx", sampleDOCX(t), fmtDOCX.MIME, "document")
	f("xlsx", sampleXLSX(t), fmtXLSX.MIME, "document")
	f("pptx", samplePPTX(t), fmtPPTX.MIME, "document")
	f("zip", zipWith(t, "photos/1.jpg", "photos/2.jpg"), "application/zip", "")
	f("txt", sampleText(), "text/plain", "document")
	f("aac", sampleAAC(), "audio/aac", "audio")
	f("amr", sampleAMR(), "audio/amr", "audio")
	f("mp3 with ID3", sampleMP3(), "audio/mpeg", "audio")
	f("mp3 frames", sampleMP3NoTag(), "audio/mpeg", "audio")
	f("aac after ID3", append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), sampleAAC()...), "audio/aac", "audio")
	f("m4a", sampleM4A(), "audio/mp4", "audio")
	f("mp4 with audio only", isoFile("isom", []string{"isom"}, isoTrak("soun", "mp4a")), "audio/mp4", "audio")
	f("ogg opus", sampleOpus(), "audio/ogg", "audio")
	f("mp4", sampleMP4(), "video/mp4", "video")
	f("mp4 without moov", isoFile("mp42", []string{"mp42", "isom"})[:24], "video/mp4", "video")
	f("3gp", sample3GP(), "video/3gpp", "video")

	f("wav", sampleWAV(), "audio/wav", "")
	f("ogg vorbis", sampleVorbis(), "audio/ogg", "")
	f("hevc mp4", sampleHEVC(), "video/mp4", "")
	f("two audio tracks", isoFile("isom", []string{"isom"}, isoTrak("vide", "avc1"), isoTrak("soun", "mp4a"), isoTrak("soun", "mp4a")), "video/mp4", "")
	f("mov", sampleMOV(), "video/quicktime", "")
	f("gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "image/gif", "")
	f("exe", sampleEXE(), "application/x-msdownload", "")
	f("utf-16 text", []byte("\xff\xfeH\x00i\x00"), "text/plain; charset=utf-16", "")
	f("binary", []byte{0x00, 0x01, 0x02, 0x03, 0xfe, 0x00}, "", "")
	f("invalid utf-8", []byte("caf\xe9 au lait"), "", "")
	f("empty", nil, "", "")
	f("one stray sync", []byte{0xff, 0xfb, 0x90, 0x64, 'n', 'o', 't', ' ', 'a', 'u', 'd', 'i', 'o'}, "", "")
	if got := detectBytes(sampleWAV()); !strings.Contains(got.Why, "WhatsApp does not take WAV") {
		t.Fatalf("WAV refused for %q", got.Why)
	}
	if got := detectBytes(sampleHEVC()); !strings.Contains(got.Why, "H.265") {
		t.Fatalf("HEVC refused for %q", got.Why)
	}
}

func TestDetectAnimatedWebP(t *testing.T) {
	if f := detectBytes(sampleAnimatedWebP(0)); f.Kind != "sticker" || !f.Animated {
		t.Fatalf("%+v", f)
	}
	if f := detectBytes(sampleWebP()); f.Animated {
		t.Fatalf("still WebP taken as animated: %+v", f)
	}
}

func TestDetectTextAcrossChunks(t *testing.T) {
	// A multi-byte character cut by the chunk boundary is still text.
	b := append(bytes.Repeat([]byte("a"), textChunk-1), "é and more"...)
	if f := detectBytes(b); f.MIME != "text/plain" {
		t.Fatalf("%+v", f)
	}
	b = append(bytes.Repeat([]byte("a"), textChunk+10), 0)
	if f := detectBytes(b); f.known() {
		t.Fatalf("a NUL after the first chunk: %+v", f)
	}
	b = append(bytes.Repeat([]byte("a"), textChunk-1), 0xc3)
	if f := detectBytes(b); f.known() {
		t.Fatalf("a cut rune at the end: %+v", f)
	}
}

func TestMediaOfficeTrustsTheNameOnlyForUnnamedCompoundFiles(t *testing.T) {
	ole := detectBytes(sampleOLE("Contents"))
	if f := mediaOffice(ole, "minutes.DOC"); f.MIME != "application/msword" {
		t.Fatalf("%+v", f)
	}
	if f := mediaOffice(ole, "setup.msi"); f.Kind != "" {
		t.Fatalf("an installer became %+v", f)
	}
	if f := mediaOffice(detectBytes(samplePNG(t)), "guide.doc"); f.MIME != "image/png" {
		t.Fatalf("a PNG named .doc became %+v", f)
	}
}

// FuzzDetectMedia: any bytes get an answer, the same twice, and a format
// WhatsApp takes comes with its MIME type, media type and extension.
func FuzzDetectMedia(f *testing.F) {
	for _, s := range [][]byte{samplePNG(f), sampleJPEG(f), sampleWebP(), sampleAnimatedWebP(3), samplePDF(),
		sampleOLE("WordDocument"), sampleOLE("Workbook", "PowerPoint Document"), sampleDOCX(f), sampleXLSX(f),
		sampleText(), sampleAAC(), sampleAMR(), sampleMP3(), sampleMP3NoTag(), sampleM4A(), sampleOpus(), sampleMP4(),
		sample3GP(), sampleWAV(), sampleVorbis(), sampleHEVC(), sampleMOV(), sampleEXE(), []byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f"),
		[]byte("\x00\x00\x00\x18ftypisom"), []byte("RIFF\x00\x00\x00\x00WEBPVP8X"), []byte("OggS\x00\x02"), {0xff, 0xf1}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := detectBytes(b)
		if again := detectBytes(b); again != got {
			t.Fatalf("two answers: %+v and %+v", got, again)
		}
		if !got.known() {
			return
		}
		if got.MIME == "" {
			t.Fatalf("known format without MIME type: %+v", got)
		}
		if got.Kind == "" {
			if got.Why == "" {
				t.Fatalf("refused without a reason: %+v", got)
			}
			return
		}
		if !isMediaType(got.Kind) || got.Ext == "" {
			t.Fatalf("bad format %+v", got)
		}
	})
}
