package meta

// MediaSource gives a Client the files behind wagate's media ids, so that
// it uploads each to Meta once and sends Meta's media id after.
type MediaSource interface{}
