// Package mediatest makes tiny but real files of each media format, built
// the way their encoders write them, for the tests of format detection,
// uploads and guests' media downloads.
package mediatest

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
	"unicode/utf16"
)

// PNG is an 8×8 PNG image.
func PNG(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 8 {
		img.Set(i, i, color.RGBA{R: 200, G: 30, B: 30, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// JPEG is a 16×16 grey JPEG image.
func JPEG(t testing.TB) []byte {
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range 16 {
		img.SetGray(i, 15-i, color.Gray{Y: 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// PDF is an empty PDF document.
func PDF() []byte {
	return []byte("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n" +
		"trailer<</Root 1 0 R>>\n%%EOF\n")
}

// MP3Frame is an MPEG-1 layer III frame header (128 kbit/s, 44.1 kHz) and
// its 417-byte frame.
func MP3Frame() []byte {
	f := make([]byte, 417)
	copy(f, []byte{0xff, 0xfb, 0x90, 0x64})
	return f
}

// MP3 is an ID3v2.4 tag, padding, and two frames.
func MP3() []byte {
	b := []byte("ID3\x04\x00\x00\x00\x00\x00\x20")
	b = append(b, make([]byte, 32)...) // the tag's 32 bytes of padding
	return append(append(b, MP3Frame()...), MP3Frame()...)
}

// MP3NoTag starts with a frame directly.
func MP3NoTag() []byte { return append(MP3Frame(), MP3Frame()...) }

// ADTSFrame is an AAC-LC ADTS frame of 16 bytes (44.1 kHz, stereo).
func ADTSFrame() []byte {
	return append([]byte{0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc}, make([]byte, 9)...)
}

// AAC is three ADTS frames.
func AAC() []byte { return append(append(ADTSFrame(), ADTSFrame()...), ADTSFrame()...) }

// AMR is a narrow-band AMR file.
func AMR() []byte {
	return append([]byte("#!AMR\n"), 0x3c, 0x48, 0xf5, 0x1f, 0x96, 0x66, 0x79, 0xe1)
}

// WAV is a RIFF WAVE file (a format WhatsApp refuses).
func WAV() []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1)     // PCM
	b = binary.LittleEndian.AppendUint16(b, 1)     // mono
	b = binary.LittleEndian.AppendUint32(b, 8000)  // rate
	b = binary.LittleEndian.AppendUint32(b, 16000) // byte rate
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, 8)
	b = append(b, make([]byte, 8)...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// OggPage is the first page of an Ogg stream whose first packet is p.
func OggPage(p []byte) []byte {
	b := []byte("OggS\x00\x02")
	b = append(b, make([]byte, 8+4+4+4)...) // granule, serial, sequence, CRC
	b = append(b, 1, byte(len(p)))
	return append(b, p...)
}

// Opus is an Ogg Opus stream's first page.
func Opus() []byte {
	return OggPage([]byte("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"))
}

// Vorbis is an Ogg Vorbis stream's first page.
func Vorbis() []byte {
	return OggPage([]byte("\x01vorbis\x00\x00\x00\x00\x01\x44\xac\x00\x00"))
}

// ISOBox is an ISO BMFF box of type typ holding payload.
func ISOBox(typ string, payload ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

// ISOTrak is a trak box with handler h ("vide", "soun") and codec c.
func ISOTrak(h, c string) []byte {
	hdlr := ISOBox("hdlr", make([]byte, 8), []byte(h), make([]byte, 13))
	stsd := ISOBox("stsd", make([]byte, 4), []byte{0, 0, 0, 1}, ISOBox(c, make([]byte, 28)))
	return ISOBox("trak", ISOBox("tkhd", make([]byte, 84)),
		ISOBox("mdia", ISOBox("mdhd", make([]byte, 24)), hdlr, ISOBox("minf", ISOBox("stbl", stsd, ISOBox("stts", make([]byte, 8))))))
}

// ISOFile is an ftyp of major brand and compatible brands, then a moov
// box with the tracks, then an mdat.
func ISOFile(major string, compat []string, tracks ...[]byte) []byte {
	ftyp := append([]byte(major), 0, 0, 2, 0)
	for _, c := range compat {
		ftyp = append(ftyp, c...)
	}
	moov := ISOBox("moov", append([][]byte{ISOBox("mvhd", make([]byte, 100))}, tracks...)...)
	return append(append(ISOBox("ftyp", ftyp), moov...), ISOBox("mdat", make([]byte, 64))...)
}

// MP4 is an H.264 and AAC MP4 video.
func MP4() []byte {
	return ISOFile("isom", []string{"isom", "iso2", "avc1", "mp41"}, ISOTrak("vide", "avc1"), ISOTrak("soun", "mp4a"))
}

// HEVC is an MP4 video in H.265.
func HEVC() []byte {
	return ISOFile("isom", []string{"isom", "mp41"}, ISOTrak("vide", "hvc1"), ISOTrak("soun", "mp4a"))
}

// ThreeGP is a 3GP video.
func ThreeGP() []byte {
	return ISOFile("3gp4", []string{"isom", "3gp4"}, ISOTrak("vide", "avc1"), ISOTrak("soun", "mp4a"))
}

// M4A is an AAC audio in an MP4 container.
func M4A() []byte {
	return ISOFile("M4A ", []string{"M4A ", "mp42", "isom"}, ISOTrak("soun", "mp4a"))
}

// MOV is a QuickTime movie.
func MOV() []byte { return ISOFile("qt  ", []string{"qt  "}, ISOTrak("vide", "avc1")) }

// WebPFile is a RIFF WEBP file of the given chunks.
func WebPFile(chunks ...[]byte) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WEBP")
	for _, c := range chunks {
		b = append(b, c...)
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// RIFFChunk is a RIFF chunk: id, its length, data.
func RIFFChunk(id string, data []byte) []byte {
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// WebP is a lossless 1×1 WebP.
func WebP() []byte {
	return WebPFile(RIFFChunk("VP8L", []byte{0x2f, 0x00, 0x00, 0x00, 0x00, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0x00}))
}

// AnimatedWebP has the VP8X animation flag, an ANIM and an ANMF chunk.
func AnimatedWebP(pad int) []byte {
	vp8x := []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	frame := append(make([]byte, 16), RIFFChunk("VP8L", []byte{0x2f, 0, 0, 0, 0, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0})...)
	return WebPFile(RIFFChunk("VP8X", vp8x), RIFFChunk("ANIM", make([]byte, 6)), RIFFChunk("ANMF", append(frame, make([]byte, pad)...)))
}

// ZipWith is a zip archive of empty files of the given names.
func ZipWith(t testing.TB, names ...string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, n := range names {
		f, err := w.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("<?xml version=\"1.0\"?><x/>"))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// DOCX is a Word document (OOXML).
func DOCX(t testing.TB) []byte {
	return ZipWith(t, "[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/styles.xml", "docProps/core.xml")
}

// XLSX is an Excel workbook (OOXML).
func XLSX(t testing.TB) []byte {
	return ZipWith(t, "[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/sheet1.xml")
}

// PPTX is a PowerPoint presentation (OOXML).
func PPTX(t testing.TB) []byte {
	return ZipWith(t, "[Content_Types].xml", "_rels/.rels", "ppt/presentation.xml", "ppt/slides/slide1.xml")
}

// OLE is a compound file (512-byte sectors: the header, one FAT
// sector, one directory sector) whose root holds the given streams, as
// Word ("WordDocument"), Excel ("Workbook") or PowerPoint ("PowerPoint
// Document") write them.
func OLE(streams ...string) []byte {
	le := binary.LittleEndian
	b := make([]byte, 512*3)
	copy(b, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	le.PutUint16(b[0x18:], 0x3e)
	le.PutUint16(b[0x1a:], 3)
	le.PutUint16(b[0x1c:], 0xfffe)
	le.PutUint16(b[0x1e:], 9)
	le.PutUint16(b[0x20:], 6)
	le.PutUint32(b[0x2c:], 1)          // FAT sectors
	le.PutUint32(b[0x30:], 1)          // first directory sector
	le.PutUint32(b[0x38:], 4096)       // mini stream cutoff
	le.PutUint32(b[0x3c:], 0xfffffffe) // no mini FAT
	le.PutUint32(b[0x44:], 0xfffffffe) // no DIFAT sectors
	for i := 0; i < 109; i++ {
		le.PutUint32(b[0x4c+4*i:], 0xffffffff)
	}
	le.PutUint32(b[0x4c:], 0) // the FAT is sector 0
	fat := b[512:1024]
	for i := 0; i < 128; i++ {
		le.PutUint32(fat[4*i:], 0xffffffff)
	}
	le.PutUint32(fat[0:], 0xfffffffd) // sector 0: FAT
	le.PutUint32(fat[4:], 0xfffffffe) // sector 1: directory, end of chain
	dir := b[1024:]
	entry := func(i int, name string, typ byte) {
		e := dir[128*i:]
		u := utf16.Encode([]rune(name))
		for j, c := range u {
			le.PutUint16(e[2*j:], c)
		}
		le.PutUint16(e[0x40:], uint16(2*len(u)+2))
		e[0x42] = typ
	}
	entry(0, "Root Entry", 5)
	for i, s := range streams {
		entry(i+1, s, 2)
	}
	return b
}

// EXE is the start of a Windows program.
func EXE() []byte {
	return append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"), make([]byte, 64)...)
}

// Text is a UTF-8 text document.
func Text() []byte {
	return []byte("Breakfast: 7–11 am in the Garden Room.\nWi-Fi: GrandPlaza / welcome2026\n")
}
