package mediakit

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Format is a file format told from a file's bytes.
type Format struct {
	// Name is a short name for messages ("PNG image").
	Name string
	// MIME is the type the file is stored, served and uploaded with.
	MIME string
	// Kind is the WhatsApp media type the format is sent as (image,
	// document, audio, video, sticker); "" when WhatsApp does not take it.
	Kind string
	// Ext is the usual file name extension, without the dot.
	Ext string
	// Animated marks an animated WebP (its sticker limit is larger).
	Animated bool
	// Why says why a recognised format is refused (Kind "").
	Why string
}

// Known reports whether the bytes were recognised at all.
func (f Format) Known() bool { return f.Name != "" }

// The MIME types of formats that other packages compare a Format's MIME
// with.
const (
	// MIMEText is a text document's (served with its charset).
	MIMEText = "text/plain"
	// MIMEWebP is a WebP image's, which WhatsApp takes as a sticker only.
	MIMEWebP = "image/webp"
)

// The formats WhatsApp takes (PROVIDERS.md), by media type.
var (
	fmtJPEG = Format{Name: "JPEG image", MIME: "image/jpeg", Kind: "image", Ext: "jpg"}
	fmtPNG  = Format{Name: "PNG image", MIME: "image/png", Kind: "image", Ext: "png"}
	fmtWebP = Format{Name: "WebP image", MIME: MIMEWebP, Kind: "sticker", Ext: "webp"}
	fmtPDF  = Format{Name: "PDF document", MIME: "application/pdf", Kind: "document", Ext: "pdf"}
	fmtDOC  = Format{Name: "Word document", MIME: "application/msword", Kind: "document", Ext: "doc"}
	fmtXLS  = Format{Name: "Excel workbook", MIME: "application/vnd.ms-excel", Kind: "document", Ext: "xls"}
	fmtPPT  = Format{Name: "PowerPoint presentation", MIME: "application/vnd.ms-powerpoint", Kind: "document", Ext: "ppt"}
	fmtDOCX = Format{Name: "Word document", MIME: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Kind: "document", Ext: "docx"}
	fmtXLSX = Format{Name: "Excel workbook", MIME: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Kind: "document", Ext: "xlsx"}
	fmtPPTX = Format{Name: "PowerPoint presentation", MIME: "application/vnd.openxmlformats-officedocument.presentationml.presentation", Kind: "document", Ext: "pptx"}
	fmtText = Format{Name: "text file", MIME: MIMEText, Kind: "document", Ext: "txt"}
	fmtAAC  = Format{Name: "AAC audio", MIME: "audio/aac", Kind: "audio", Ext: "aac"}
	fmtAMR  = Format{Name: "AMR audio", MIME: "audio/amr", Kind: "audio", Ext: "amr"}
	fmtMP3  = Format{Name: "MP3 audio", MIME: "audio/mpeg", Kind: "audio", Ext: "mp3"}
	fmtM4A  = Format{Name: "M4A audio", MIME: "audio/mp4", Kind: "audio", Ext: "m4a"}
	fmtOpus = Format{Name: "Ogg Opus audio", MIME: "audio/ogg", Kind: "audio", Ext: "ogg"}
	fmtMP4  = Format{Name: "MP4 video", MIME: "video/mp4", Kind: "video", Ext: "mp4"}
	fmt3GP  = Format{Name: "3GP video", MIME: "video/3gpp", Kind: "video", Ext: "3gp"}

	// fmtOLE is a compound file whose streams do not say which Office
	// program wrote it; the upload's file name may (Office).
	fmtOLE = Format{Name: "Office document", MIME: "application/x-ole-storage",
		Why: "it is an OLE compound file that is not a Word, Excel or PowerPoint document"}
)

// refused is a recognised format WhatsApp does not take, and why.
func refusedFormat(name, mime, why string) Format {
	return Format{Name: name, MIME: mime, Why: why}
}

// headSize is how much of a file the detector reads first; the formats
// whose signature is further in (zip, OLE, ISO media) are read at need.
const headSize = 4096

// Detect tells a file's format from its bytes alone: the name a file
// was uploaded with says nothing (a PNG called .pdf is a PNG). It reads r
// at offsets below size and never further; an unknown format has Name "".
func Detect(r io.ReaderAt, size int64) Format {
	if size <= 0 {
		return Format{}
	}
	var buf [headSize]byte
	n, _ := r.ReadAt(buf[:min(size, headSize)], 0)
	h := buf[:n]
	has := func(off int, sig string) bool { return len(h) >= off+len(sig) && string(h[off:off+len(sig)]) == sig }
	switch {
	case has(0, "\xff\xd8\xff"):
		return fmtJPEG
	case has(0, "\x89PNG\r\n\x1a\n"):
		return fmtPNG
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return refusedFormat("GIF image", "image/gif", "WhatsApp takes images as JPEG or PNG (animations as MP4 video)")
	case has(0, "RIFF") && has(8, "WEBP"):
		return detectWebP(h)
	case has(0, "RIFF") && has(8, "WAVE"):
		return refusedFormat("WAV audio", "audio/wav", "WhatsApp does not take WAV audio; convert it to MP3, AAC, M4A, AMR or Ogg Opus")
	case has(0, "RIFF") && has(8, "AVI "):
		return refusedFormat("AVI video", "video/x-msvideo", "WhatsApp takes video as MP4 or 3GP (H.264 and AAC)")
	case has(0, "%PDF-"):
		return fmtPDF
	case has(0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
		return detectOLE(r, size)
	case has(0, "PK\x03\x04"):
		return detectZip(r, size)
	case has(0, "#!AMR\n"):
		return fmtAMR
	case has(0, "#!AMR-WB\n"):
		return refusedFormat("AMR-WB audio", "audio/amr-wb", "WhatsApp takes AMR audio in its narrow-band form only")
	case has(0, "OggS"):
		return detectOgg(h)
	case has(0, "fLaC"):
		return refusedFormat("FLAC audio", "audio/flac", "WhatsApp does not take FLAC audio; convert it to MP3, AAC, M4A or Ogg Opus")
	case has(0, "ID3"):
		return detectID3(r, size, h)
	case has(4, "ftyp"):
		return detectISO(r, size, h)
	case has(0, "\x1a\x45\xdf\xa3"):
		return refusedFormat("Matroska/WebM video", "video/webm", "WhatsApp takes video as MP4 or 3GP (H.264 and AAC)")
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return refusedFormat("TIFF image", "image/tiff", "WhatsApp takes images as JPEG or PNG")
	case has(0, "BM") && len(h) >= 18 && bmpHeader(binary.LittleEndian.Uint32(h[14:18])):
		return refusedFormat("BMP image", "image/bmp", "WhatsApp takes images as JPEG or PNG")
	case has(0, "MZ"):
		return refusedFormat("Windows program", "application/x-msdownload", "programs cannot be sent")
	case has(0, "\x7fELF"):
		return refusedFormat("ELF program", "application/x-executable", "programs cannot be sent")
	case has(0, "Rar!\x1a\x07"), has(0, "7z\xbc\xaf\x27\x1c"), has(0, "\x1f\x8b"):
		return refusedFormat("compressed archive", "application/octet-stream", "archives cannot be sent; send the documents themselves")
	case has(0, "{\\rtf"):
		return refusedFormat("RTF document", "application/rtf", "WhatsApp takes documents as PDF, Word, Excel, PowerPoint or plain text")
	}
	if len(h) >= 2 && h[0] == 0xff && h[1]&0xe0 == 0xe0 {
		if f := detectFrames(r, size, 0); f.Known() {
			return f
		}
	}
	if has(0, "\xff\xfe") || has(0, "\xfe\xff") {
		return refusedFormat("UTF-16 text", "text/plain; charset=utf-16", "WhatsApp takes text documents in UTF-8")
	}
	if isText(r, size) {
		return fmtText
	}
	return Format{}
}

// bmpHeader reports whether n is the size of a BMP info header.
func bmpHeader(n uint32) bool {
	switch n {
	case 12, 40, 52, 56, 64, 108, 124:
		return true
	}
	return false
}

// detectWebP reads a WebP's first chunk: VP8 (lossy) and VP8L (lossless)
// are still images; VP8X carries flags, among them animation.
func detectWebP(h []byte) Format {
	if len(h) < 16 {
		return refusedFormat("damaged WebP image", "image/webp", "the WebP file holds no image")
	}
	switch string(h[12:16]) {
	case "VP8 ", "VP8L":
		return fmtWebP
	case "VP8X":
		if len(h) < 21 {
			return refusedFormat("damaged WebP image", "image/webp", "the WebP file holds no image")
		}
		f := fmtWebP
		f.Animated = h[20]&0x02 != 0
		if f.Animated {
			f.Name = "animated WebP image"
		}
		return f
	}
	return refusedFormat("damaged WebP image", "image/webp", "the WebP file holds no image")
}

// detectOgg reads the first packet of an Ogg stream: WhatsApp takes Ogg
// audio only with the Opus codec.
func detectOgg(h []byte) Format {
	if len(h) < 27 {
		return refusedFormat("damaged Ogg file", "audio/ogg", "the Ogg file is cut short")
	}
	start := 27 + int(h[26])
	p := h[min(start, len(h)):]
	switch {
	case bytes.HasPrefix(p, []byte("OpusHead")):
		return fmtOpus
	case bytes.HasPrefix(p, []byte("\x01vorbis")):
		return refusedFormat("Ogg Vorbis audio", "audio/ogg", "WhatsApp takes Ogg audio only with the Opus codec; convert it to Opus, MP3 or AAC")
	case bytes.HasPrefix(p, []byte("\x80theora")):
		return refusedFormat("Ogg Theora video", "video/ogg", "WhatsApp takes video as MP4 or 3GP (H.264 and AAC)")
	}
	return refusedFormat("Ogg file", "application/ogg", "WhatsApp takes Ogg audio only with the Opus codec")
}

// id3Scan is how far past an ID3 tag the detector looks for the first
// audio frame (encoders pad the tag).
const id3Scan = 4096

// detectID3 skips an ID3v2 tag and tells MP3 from AAC by the frame after
// it; a tag followed by nothing recognisable is taken as MP3, the format
// ID3 tags belong to.
func detectID3(r io.ReaderAt, size int64, h []byte) Format {
	if len(h) < 10 {
		return fmtMP3
	}
	var tag int64
	for _, b := range h[6:10] {
		if b >= 0x80 { // not a syncsafe size: not an ID3 tag
			return Format{}
		}
		tag = tag<<7 | int64(b)
	}
	end := 10 + tag
	if h[5]&0x10 != 0 {
		end += 10 // footer
	}
	if end >= size {
		return fmtMP3
	}
	var buf [id3Scan]byte
	n, _ := r.ReadAt(buf[:min(size-end, id3Scan)], end)
	for i := 0; i+1 < n; i++ {
		if buf[i] == 0xff && buf[i+1]&0xe0 == 0xe0 {
			if f := detectFrames(r, size, end+int64(i)); f.Known() {
				return f
			}
		}
	}
	return fmtMP3
}

// Bit rates of MPEG audio in kbit/s by [version is 1][layer-1][index].
var mpegBitrates = [2][3][16]int{
	{ // MPEG 2 and 2.5
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},      // layer III
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},      // layer II
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0}, // layer I
	},
	{ // MPEG 1
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0},     // layer III
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},    // layer II
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0}, // layer I
	},
}

// Sample rates of MPEG 1 audio; MPEG 2 halves them, MPEG 2.5 quarters them.
var mpegRates = [3]int{44100, 48000, 32000}

// adtsRates are the sample rates an ADTS header may name.
const adtsRates = 13

// frameLen returns the length of the MPEG audio or ADTS frame whose
// header is h (4 to 7 bytes), its format, and false if h is not one.
func frameLen(h []byte) (int, Format, bool) {
	if len(h) < 4 || h[0] != 0xff || h[1]&0xe0 != 0xe0 {
		return 0, Format{}, false
	}
	if h[1]&0xf6 == 0xf0 { // 12-bit sync and layer 0: ADTS
		if len(h) < 7 || (h[2]>>2)&0x0f >= adtsRates {
			return 0, Format{}, false
		}
		n := int(h[3]&0x03)<<11 | int(h[4])<<3 | int(h[5]>>5)
		if n < 7 {
			return 0, Format{}, false
		}
		return n, fmtAAC, true
	}
	version := (h[1] >> 3) & 3 // 0: 2.5, 1: reserved, 2: 2, 3: 1
	layer := (h[1] >> 1) & 3   // 1: III, 2: II, 3: I
	bri := h[2] >> 4
	sri := (h[2] >> 2) & 3
	if version == 1 || layer == 0 || bri == 0 || bri == 15 || sri == 3 {
		return 0, Format{}, false
	}
	v1 := 0
	if version == 3 {
		v1 = 1
	}
	rate := mpegRates[sri]
	switch version {
	case 2:
		rate /= 2
	case 0:
		rate /= 4
	}
	br := mpegBitrates[v1][layer-1][bri] * 1000
	pad := int(h[2]>>1) & 1
	var n int
	switch {
	case layer == 3:
		n = (12*br/rate + pad) * 4
	case layer == 1 && v1 == 0:
		n = 72*br/rate + pad
	default:
		n = 144*br/rate + pad
	}
	if n < 4 {
		return 0, Format{}, false
	}
	return n, fmtMP3, true
}

// detectFrames checks for MPEG audio or ADTS frames at off: the header
// must be valid, and so must the next frame's when the file goes on past
// the first, so that two stray bytes do not make a file audio.
func detectFrames(r io.ReaderAt, size, off int64) Format {
	var h [7]byte
	n, _ := r.ReadAt(h[:min(size-off, 7)], off)
	l, f, ok := frameLen(h[:n])
	if !ok {
		return Format{}
	}
	next := off + int64(l)
	if next > size { // a first frame cut short is no evidence
		return Format{}
	}
	if next+4 > size {
		return f
	}
	n, _ = r.ReadAt(h[:min(size-next, 7)], next)
	if _, g, ok := frameLen(h[:n]); !ok || g.MIME != f.MIME {
		return Format{}
	}
	return f
}

// OLE compound file constants ([MS-CFB]).
const (
	oleEndOfChain   = 0xfffffffe
	oleMaxRegular   = 0xfffffffa
	oleDIFATInHead  = 109
	oleMaxDirSector = 256 // bounds the directory read: Office files use a few
)

// detectOLE tells Word, Excel and PowerPoint files apart by the streams in
// their compound file's directory.
func detectOLE(r io.ReaderAt, size int64) Format {
	var head [512]byte
	if n, _ := r.ReadAt(head[:min(size, 512)], 0); n < 512 {
		return fmtOLE
	}
	le := binary.LittleEndian
	shift := le.Uint16(head[0x1e:])
	if shift != 9 && shift != 12 {
		return fmtOLE
	}
	ssz := int64(1) << shift
	perFAT := ssz / 4
	sectorAt := func(sec uint32) int64 { return (int64(sec) + 1) * ssz }
	read32 := func(off int64) (uint32, bool) {
		var b [4]byte
		if off < 0 || off+4 > size {
			return 0, false
		}
		if n, _ := r.ReadAt(b[:], off); n < 4 {
			return 0, false
		}
		return le.Uint32(b[:]), true
	}
	// fatSector returns where the i-th sector of the allocation table is.
	fatSector := func(i int64) (uint32, bool) {
		if i < oleDIFATInHead {
			return le.Uint32(head[0x4c+4*i:]), true
		}
		i -= oleDIFATInHead
		sec := le.Uint32(head[0x44:])
		for hops := 0; sec < oleMaxRegular && hops < 1024; hops++ {
			if i < perFAT-1 {
				return read32(sectorAt(sec) + 4*i)
			}
			i -= perFAT - 1
			next, ok := read32(sectorAt(sec) + 4*(perFAT-1))
			if !ok {
				return 0, false
			}
			sec = next
		}
		return 0, false
	}
	next := func(sec uint32) (uint32, bool) {
		fs, ok := fatSector(int64(sec) / perFAT)
		if !ok || fs >= oleMaxRegular {
			return 0, false
		}
		return read32(sectorAt(fs) + 4*(int64(sec)%perFAT))
	}
	var doc, xls, ppt bool
	entry := make([]byte, 128)
	sec := le.Uint32(head[0x30:])
	for hops := 0; sec < oleMaxRegular && hops < oleMaxDirSector; hops++ {
		base := sectorAt(sec)
		for e := int64(0); e < ssz/128; e++ {
			if n, _ := r.ReadAt(entry, base+128*e); n < 128 {
				break
			}
			switch oleName(entry) {
			case "worddocument":
				doc = true
			case "workbook", "book":
				xls = true
			case "powerpoint document":
				ppt = true
			}
		}
		s, ok := next(sec)
		if !ok {
			break
		}
		sec = s
	}
	switch {
	case doc && !xls && !ppt:
		return fmtDOC
	case xls && !doc && !ppt:
		return fmtXLS
	case ppt && !doc && !xls:
		return fmtPPT
	}
	return fmtOLE
}

// oleName returns a directory entry's name in lower case.
func oleName(e []byte) string {
	n := int(binary.LittleEndian.Uint16(e[0x40:]))
	if n < 2 || n > 64 || n%2 != 0 {
		return ""
	}
	u := make([]uint16, 0, n/2-1)
	for i := 0; i+1 < n-2; i += 2 {
		u = append(u, binary.LittleEndian.Uint16(e[i:]))
	}
	return strings.ToLower(string(utf16.Decode(u)))
}

// maxZipEntries bounds the names detectZip looks at.
const maxZipEntries = 10000

// detectZip tells Office Open XML documents (a zip with [Content_Types].xml
// and word/, xl/ or ppt/ parts) from other zip files.
func detectZip(r io.ReaderAt, size int64) Format {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return refusedFormat("damaged ZIP archive", "application/zip", "the file starts as a ZIP archive but cannot be read as one")
	}
	var types, word, xl, ppt bool
	for i, f := range zr.File {
		if i == maxZipEntries {
			break
		}
		switch {
		case f.Name == "[Content_Types].xml":
			types = true
		case strings.HasPrefix(f.Name, "word/"):
			word = true
		case strings.HasPrefix(f.Name, "xl/"):
			xl = true
		case strings.HasPrefix(f.Name, "ppt/"):
			ppt = true
		}
	}
	switch {
	case types && word && !xl && !ppt:
		return fmtDOCX
	case types && xl && !word && !ppt:
		return fmtXLSX
	case types && ppt && !word && !xl:
		return fmtPPTX
	case types:
		return refusedFormat("Office Open XML file", "application/zip", "WhatsApp takes Word, Excel and PowerPoint documents, not this kind of Office file")
	}
	return refusedFormat("ZIP archive", "application/zip", "archives cannot be sent; send the documents themselves")
}

// ISO base media brands ("ftyp").
var (
	mp4Brands = []string{"isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9",
		"mp41", "mp42", "mp71", "avc1", "dash", "M4V ", "M4VH", "M4VP", "MSNV", "f4v ", "F4V ", "mmp4", "XAVC"}
	m4aBrands  = []string{"M4A ", "M4B ", "M4P "}
	heifBrands = []string{"heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1", "avif", "avis"}
)

func brandIn(b string, set []string) bool {
	for _, s := range set {
		if b == s {
			return true
		}
	}
	return false
}

// is3GP reports a 3GPP brand (3gp4…, 3gg6, 3gs7, 3ge6, 3gr6); 3g2 is 3GPP2.
func is3GP(b string) bool {
	return len(b) == 4 && b[:2] == "3g" && strings.ContainsRune("pgsre", rune(b[2]))
}

// detectISO reads an ISO base media file's brands, then checks its tracks'
// codecs where its moov box can be found: WhatsApp plays H.264 video and
// AAC audio.
func detectISO(r io.ReaderAt, size int64, h []byte) Format {
	boxLen := int(binary.BigEndian.Uint32(h[0:4]))
	if boxLen < 16 || len(h) < 12 {
		return refusedFormat("damaged MP4 file", "video/mp4", "the file's ftyp box is cut short")
	}
	brands := []string{string(h[8:12])}
	for off := 16; off+4 <= min(boxLen, len(h)); off += 4 {
		brands = append(brands, string(h[off:off+4]))
	}
	var f Format
	pick := func(b string) bool {
		switch {
		case brandIn(b, m4aBrands):
			f = fmtM4A
		case is3GP(b):
			f = fmt3GP
		case brandIn(b, mp4Brands):
			f = fmtMP4
		case strings.HasPrefix(b, "3g2"):
			f = refusedFormat("3GPP2 video", "video/3gpp2", "WhatsApp takes video as MP4 or 3GP (H.264 and AAC)")
		case b == "qt  ":
			f = refusedFormat("QuickTime movie", "video/quicktime", "WhatsApp takes video as MP4 or 3GP (H.264 and AAC); convert the MOV file to MP4")
		case brandIn(b, heifBrands):
			f = refusedFormat("HEIF/AVIF image", "image/heic", "WhatsApp takes images as JPEG or PNG")
		default:
			return false
		}
		return true
	}
	// The major brand decides; a file of an unknown major brand is judged
	// by the compatible brands it lists.
	found := false
	for _, b := range brands {
		if found = pick(b); found {
			break
		}
	}
	if !found {
		return refusedFormat("ISO media file", "application/octet-stream", "the file's brand "+printableFourCC(brands[0])+" is not MP4, 3GP or M4A")
	}
	if f.Kind == "" {
		return f
	}
	tracks := isoTracks(r, size)
	var audio, video int
	for _, t := range tracks {
		switch t.handler {
		case "soun":
			audio++
			if t.codec != "mp4a" {
				return refusedFormat(f.Name, f.MIME, "its audio is "+codecName(t.codec)+"; WhatsApp plays AAC audio")
			}
		case "vide":
			video++
			if t.codec != "avc1" && t.codec != "avc3" {
				return refusedFormat(f.Name, f.MIME, "its video is "+codecName(t.codec)+"; WhatsApp plays H.264 video")
			}
		}
	}
	switch {
	case audio > 1:
		return refusedFormat(f.Name, f.MIME, "it has more than one audio track; WhatsApp plays one")
	case f.Kind == "audio" && video > 0:
		f = fmtMP4 // an "M4A" with pictures is a video
	case f.Kind == "video" && len(tracks) > 0 && video == 0:
		if f.MIME == fmtMP4.MIME {
			f = fmtM4A // audio alone in an MP4 is M4A audio
		}
	}
	return f
}

// codecName names a sample entry's codec for messages.
func codecName(fourcc string) string {
	switch fourcc {
	case "hvc1", "hev1":
		return "H.265 (HEVC)"
	case "av01":
		return "AV1"
	case "vp09":
		return "VP9"
	case "mp4v":
		return "MPEG-4 Part 2"
	case "s263":
		return "H.263"
	case "samr":
		return "AMR"
	case "sawb":
		return "AMR-WB"
	case "alac":
		return "Apple Lossless"
	case "Opus":
		return "Opus"
	case "ac-3", "ec-3":
		return "Dolby Digital"
	case "":
		return "of no codec"
	}
	return printableFourCC(fourcc)
}

// printable quotes a four-character code, replacing what is not printable.
func printableFourCC(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return `"` + string(b) + `"`
}

// isoTrack is one track of an ISO media file: its handler ("vide",
// "soun") and the codec of its first sample entry ("avc1", "mp4a").
type isoTrack struct{ handler, codec string }

// Bounds of the box walk, so that a hostile file cannot make it long.
const (
	maxISOBoxes  = 4096
	maxISOTracks = 16
)

// isoTracks walks the moov box for its tracks; none when there is no moov
// box (a fragment, a file cut short) or it cannot be read.
func isoTracks(r io.ReaderAt, size int64) []isoTrack {
	budget := maxISOBoxes
	var tracks []isoTrack
	isoBoxes(r, 0, size, &budget, func(typ string, start, end int64) {
		if typ != "moov" {
			return
		}
		isoBoxes(r, start, end, &budget, func(typ string, start, end int64) {
			if typ != "trak" || len(tracks) == maxISOTracks {
				return
			}
			var t isoTrack
			isoBoxes(r, start, end, &budget, func(typ string, start, end int64) {
				if typ != "mdia" {
					return
				}
				isoBoxes(r, start, end, &budget, func(typ string, start, end int64) {
					switch typ {
					case "hdlr": // full box header, pre_defined, handler_type
						t.handler = readFourCC(r, start+8, end)
					case "minf":
						isoBoxes(r, start, end, &budget, func(typ string, start, end int64) {
							if typ != "stbl" {
								return
							}
							isoBoxes(r, start, end, &budget, func(typ string, start, end int64) {
								if typ == "stsd" { // full box header, entry count, then the first entry's size and format
									t.codec = readFourCC(r, start+12, end)
								}
							})
						})
					}
				})
			})
			tracks = append(tracks, t)
		})
	})
	return tracks
}

// isoBoxes calls fn with the type and payload range of each box in
// [start, end), spending one of budget per box.
func isoBoxes(r io.ReaderAt, start, end int64, budget *int, fn func(typ string, start, end int64)) {
	var h [16]byte
	for off := start; off+8 <= end && *budget > 0; {
		*budget--
		if n, _ := r.ReadAt(h[:8], off); n < 8 {
			return
		}
		n := int64(binary.BigEndian.Uint32(h[:4]))
		typ := string(h[4:8])
		hdr := int64(8)
		switch n {
		case 0: // to the end
			n = end - off
		case 1: // 64-bit size
			if off+16 > end {
				return
			}
			if k, _ := r.ReadAt(h[8:16], off+8); k < 8 {
				return
			}
			big := binary.BigEndian.Uint64(h[8:16])
			if big > uint64(end-off) {
				return
			}
			n, hdr = int64(big), 16
		}
		if n < hdr || n > end-off {
			return
		}
		fn(typ, off+hdr, off+n)
		off += n
	}
}

// readFourCC reads four characters at off, "" past end.
func readFourCC(r io.ReaderAt, off, end int64) string {
	if off+4 > end {
		return ""
	}
	var b [4]byte
	if n, _ := r.ReadAt(b[:], off); n < 4 {
		return ""
	}
	return string(b[:])
}

// textChunk is how much of a file isText checks at a time.
const textChunk = 32 << 10

// isText reports whether the whole file is UTF-8 without NUL bytes: what
// WhatsApp shows as a plain text document.
func isText(r io.ReaderAt, size int64) bool {
	buf := make([]byte, textChunk+utf8.UTFMax)
	carry := 0 // bytes of a rune cut by the previous chunk, at buf's start
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf[carry:carry+int(min(size-off, textChunk))], off)
		if n == 0 {
			return err == io.EOF && off >= size
		}
		off += int64(n)
		b := buf[:carry+n]
		if bytes.IndexByte(b, 0) >= 0 {
			return false
		}
		// Keep an incomplete rune at the end for the next chunk.
		cut := len(b)
		if off < size {
			for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
				if utf8.RuneStart(b[i]) {
					if !utf8.FullRune(b[i:]) {
						cut = i
					}
					break
				}
			}
		}
		if !utf8.Valid(b[:cut]) {
			return false
		}
		carry = copy(buf, b[cut:])
	}
	return carry == 0
}

// FileExt is a file name extension for f: its own, or that of the
// format WhatsApp takes with its MIME type (an HEVC MP4 is still .mp4);
// "bin" for an unknown one.
func (f Format) FileExt() string {
	if f.Ext != "" {
		return f.Ext
	}
	for _, k := range []Format{fmtJPEG, fmtPNG, fmtWebP, fmtPDF, fmtText, fmtAAC, fmtAMR, fmtMP3, fmtM4A, fmtOpus, fmtMP4, fmt3GP} {
		if k.MIME == f.MIME {
			return k.Ext
		}
	}
	return "bin"
}

// Office settles a compound file the detector could not name by the
// upload's file name, the only other witness of which Office program
// wrote it.
func Office(f Format, filename string) Format {
	if f.MIME != fmtOLE.MIME {
		return f
	}
	i := strings.LastIndexByte(filename, '.')
	if i < 0 {
		return f
	}
	switch strings.ToLower(filename[i+1:]) {
	case "doc":
		return fmtDOC
	case "xls":
		return fmtXLS
	case "ppt":
		return fmtPPT
	}
	return f
}
