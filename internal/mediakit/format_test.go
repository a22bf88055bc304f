package mediakit

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/wagate/wagate/internal/mediatest"
)

func detectBytes(b []byte) Format { return Detect(bytes.NewReader(b), int64(len(b))) }

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
	f("png", mediatest.PNG(t), "image/png", "image")
	f("jpeg", mediatest.JPEG(t), "image/jpeg", "image")
	f("webp", mediatest.WebP(), "image/webp", "sticker")
	f("pdf", mediatest.PDF(), "application/pdf", "document")
	f("doc", mediatest.OLE("WordDocument", "\x05SummaryInformation", "1Table"), "application/msword", "document")
	f("xls", mediatest.OLE("Workbook", "\x05SummaryInformation"), "application/vnd.ms-excel", "document")
	f("xls 5.0", mediatest.OLE("Book"), "application/vnd.ms-excel", "document")
	f("ppt", mediatest.OLE("PowerPoint Document", "Current User"), "application/vnd.ms-powerpoint", "document")
	f("ole without office streams", mediatest.OLE("Contents"), "application/x-ole-storage", "")
	f("docx", mediatest.DOCX(t), fmtDOCX.MIME, "document")
	f("xlsx", mediatest.XLSX(t), fmtXLSX.MIME, "document")
	f("pptx", mediatest.PPTX(t), fmtPPTX.MIME, "document")
	f("zip", mediatest.ZipWith(t, "photos/1.jpg", "photos/2.jpg"), "application/zip", "")
	f("txt", mediatest.Text(), "text/plain", "document")
	f("aac", mediatest.AAC(), "audio/aac", "audio")
	f("amr", mediatest.AMR(), "audio/amr", "audio")
	f("mp3 with ID3", mediatest.MP3(), "audio/mpeg", "audio")
	f("mp3 frames", mediatest.MP3NoTag(), "audio/mpeg", "audio")
	f("aac after ID3", append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), mediatest.AAC()...), "audio/aac", "audio")
	f("m4a", mediatest.M4A(), "audio/mp4", "audio")
	f("mp4 with audio only", mediatest.ISOFile("isom", []string{"isom"}, mediatest.ISOTrak("soun", "mp4a")), "audio/mp4", "audio")
	f("ogg opus", mediatest.Opus(), "audio/ogg", "audio")
	f("mp4", mediatest.MP4(), "video/mp4", "video")
	f("mp4 without moov", mediatest.ISOFile("mp42", []string{"mp42", "isom"})[:24], "video/mp4", "video")
	f("3gp", mediatest.ThreeGP(), "video/3gpp", "video")

	f("wav", mediatest.WAV(), "audio/wav", "")
	f("ogg vorbis", mediatest.Vorbis(), "audio/ogg", "")
	f("hevc mp4", mediatest.HEVC(), "video/mp4", "")
	f("two audio tracks", mediatest.ISOFile("isom", []string{"isom"}, mediatest.ISOTrak("vide", "avc1"), mediatest.ISOTrak("soun", "mp4a"), mediatest.ISOTrak("soun", "mp4a")), "video/mp4", "")
	f("mov", mediatest.MOV(), "video/quicktime", "")
	f("gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "image/gif", "")
	f("exe", mediatest.EXE(), "application/x-msdownload", "")
	f("utf-16 text", []byte("\xff\xfeH\x00i\x00"), "text/plain; charset=utf-16", "")
	f("binary", []byte{0x00, 0x01, 0x02, 0x03, 0xfe, 0x00}, "", "")
	f("invalid utf-8", []byte("caf\xe9 au lait"), "", "")
	f("empty", nil, "", "")
	f("one stray sync", []byte{0xff, 0xfb, 0x90, 0x64, 'n', 'o', 't', ' ', 'a', 'u', 'd', 'i', 'o'}, "", "")
	if got := detectBytes(mediatest.WAV()); !strings.Contains(got.Why, "WhatsApp does not take WAV") {
		t.Fatalf("WAV refused for %q", got.Why)
	}
	if got := detectBytes(mediatest.HEVC()); !strings.Contains(got.Why, "H.265") {
		t.Fatalf("HEVC refused for %q", got.Why)
	}
}

func TestDetectAnimatedWebP(t *testing.T) {
	if f := detectBytes(mediatest.AnimatedWebP(0)); f.Kind != "sticker" || !f.Animated {
		t.Fatalf("%+v", f)
	}
	if f := detectBytes(mediatest.WebP()); f.Animated {
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
	if f := detectBytes(b); f.Known() {
		t.Fatalf("a NUL after the first chunk: %+v", f)
	}
	b = append(bytes.Repeat([]byte("a"), textChunk-1), 0xc3)
	if f := detectBytes(b); f.Known() {
		t.Fatalf("a cut rune at the end: %+v", f)
	}
}

func TestMediaOfficeTrustsTheNameOnlyForUnnamedCompoundFiles(t *testing.T) {
	ole := detectBytes(mediatest.OLE("Contents"))
	if f := Office(ole, "minutes.DOC"); f.MIME != "application/msword" {
		t.Fatalf("%+v", f)
	}
	if f := Office(ole, "setup.msi"); f.Kind != "" {
		t.Fatalf("an installer became %+v", f)
	}
	if f := Office(detectBytes(mediatest.PNG(t)), "guide.doc"); f.MIME != "image/png" {
		t.Fatalf("a PNG named .doc became %+v", f)
	}
}

// FuzzDetectMedia: any bytes get an answer, the same twice, and a format
// WhatsApp takes comes with its MIME type, media type and extension.
func FuzzDetectMedia(f *testing.F) {
	for _, s := range [][]byte{mediatest.PNG(f), mediatest.JPEG(f), mediatest.WebP(), mediatest.AnimatedWebP(3), mediatest.PDF(),
		mediatest.OLE("WordDocument"), mediatest.OLE("Workbook", "PowerPoint Document"), mediatest.DOCX(f), mediatest.XLSX(f),
		mediatest.Text(), mediatest.AAC(), mediatest.AMR(), mediatest.MP3(), mediatest.MP3NoTag(), mediatest.M4A(), mediatest.Opus(), mediatest.MP4(),
		mediatest.ThreeGP(), mediatest.WAV(), mediatest.Vorbis(), mediatest.HEVC(), mediatest.MOV(), mediatest.EXE(), []byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f"),
		[]byte("\x00\x00\x00\x18ftypisom"), []byte("RIFF\x00\x00\x00\x00WEBPVP8X"), []byte("OggS\x00\x02"), {0xff, 0xf1}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := detectBytes(b)
		if again := detectBytes(b); again != got {
			t.Fatalf("two answers: %+v and %+v", got, again)
		}
		if !got.Known() {
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
		if !slices.Contains([]string{"image", "document", "audio", "video", "sticker"}, got.Kind) || got.Ext == "" {
			t.Fatalf("bad format %+v", got)
		}
	})
}
