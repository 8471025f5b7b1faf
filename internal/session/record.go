package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// Records are stored in a compact binary form: decoding JSON was the
// largest cost of a proxied request. Layout: recordVersion; the claims and
// then each string field as uvarint length + bytes; then Expiry, CreatedAt
// and ExpiresAt as varint Unix nanoseconds. Records written as JSON (first
// byte '{') still decode.
const recordVersion = 0x02

var errRecordFormat = errors.New("session: malformed record")

// strings lists the record's string fields in their stored order.
func (rec *Record) strings() []*string {
	return []*string{&rec.App, &rec.Subject, &rec.SID, &rec.Nonce, &rec.IDToken, &rec.AccessToken, &rec.RefreshToken, &rec.TokenType}
}

func encodeRecord(rec *Record) []byte {
	fields := rec.strings()
	n := 1 + len(rec.Claims) + (len(fields)+4)*binary.MaxVarintLen64
	for _, s := range fields {
		n += len(*s)
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(rec.Claims)))
	b = append(b, rec.Claims...)
	for _, s := range fields {
		b = binary.AppendUvarint(b, uint64(len(*s)))
		b = append(b, *s...)
	}
	for _, t := range []time.Time{rec.Expiry, rec.CreatedAt, rec.ExpiresAt} {
		b = binary.AppendVarint(b, t.UnixNano())
	}
	return b
}

func decodeRecord(b []byte, rec *Record) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, rec)
	}
	if len(b) == 0 || b[0] != recordVersion {
		return errRecordFormat
	}
	b = b[1:]
	next := func() ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, false
		}
		v := b[n : n+int(l)]
		b = b[n+int(l):]
		return v, true
	}
	claims, ok := next()
	if !ok {
		return errRecordFormat
	}
	if len(claims) > 0 {
		rec.Claims = Claims(append([]byte(nil), claims...))
	}
	for _, s := range rec.strings() {
		v, ok := next()
		if !ok {
			return errRecordFormat
		}
		*s = string(v)
	}
	for _, t := range []*time.Time{&rec.Expiry, &rec.CreatedAt, &rec.ExpiresAt} {
		v, n := binary.Varint(b)
		if n <= 0 {
			return errRecordFormat
		}
		*t = time.Unix(0, v)
		b = b[n:]
	}
	if len(b) != 0 {
		return errRecordFormat
	}
	return nil
}
