package session

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Records are stored in a compact binary form: decoding JSON was the
// largest cost of a proxied request. Layout: recordVersion; the claims and
// then each string field as uvarint length + bytes; then Expiry, CreatedAt
// and ExpiresAt (v2: varint Unix nanoseconds; v3: varint Unix seconds and
// uvarint nanoseconds). Records written as JSON (first
// byte '{') still decode.
//
// Version 3 stores each token field with a kind byte: 0 = as is, 1 = a
// compact JWT kept as its three base64url-decoded parts (a quarter smaller:
// tokens are most of a record). A token is stored as a JWT only if
// re-encoding gives back exactly the same string.
const (
	recordVersion   = 0x03
	recordVersionV2 = 0x02
	tokenPlain      = 0x00
	tokenJWT        = 0x01
)

var errRecordFormat = errors.New("session: malformed record")

// strings lists the record's plain string fields in their stored order.
func (rec *Record) strings() []*string {
	return []*string{&rec.App, &rec.Subject, &rec.SID, &rec.Nonce, &rec.TokenType}
}

// tokens lists the token fields in their stored order.
func (rec *Record) tokens() []*string {
	return []*string{&rec.IDToken, &rec.AccessToken, &rec.RefreshToken}
}

// appendToken appends tok as a JWT's decoded parts when that round-trips.
func appendToken(b []byte, tok string) []byte {
	if parts := strings.Split(tok, "."); len(parts) == 3 {
		var raw [3][]byte
		ok := true
		for i, p := range parts {
			d, err := base64.RawURLEncoding.DecodeString(p)
			if err != nil || base64.RawURLEncoding.EncodeToString(d) != p {
				ok = false
				break
			}
			raw[i] = d
		}
		if ok {
			b = append(b, tokenJWT)
			for _, d := range raw {
				b = binary.AppendUvarint(b, uint64(len(d)))
				b = append(b, d...)
			}
			return b
		}
	}
	b = append(b, tokenPlain)
	b = binary.AppendUvarint(b, uint64(len(tok)))
	return append(b, tok...)
}

func encodeRecord(rec *Record) []byte {
	fields, toks := rec.strings(), rec.tokens()
	n := 1 + len(rec.Claims) + (len(fields)+4*len(toks)+4)*binary.MaxVarintLen64
	for _, s := range append(fields, toks...) {
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
	for _, t := range toks {
		b = appendToken(b, *t)
	}
	for _, t := range []time.Time{rec.Expiry, rec.CreatedAt, rec.ExpiresAt} {
		// Seconds and nanoseconds: UnixNano only spans 1678–2262.
		b = binary.AppendVarint(b, t.Unix())
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	}
	return b
}

func decodeRecord(b []byte, rec *Record) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, rec)
	}
	if len(b) == 0 || (b[0] != recordVersion && b[0] != recordVersionV2) {
		return errRecordFormat
	}
	version := b[0]
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
	if version == recordVersionV2 {
		for _, s := range []*string{&rec.App, &rec.Subject, &rec.SID, &rec.Nonce, &rec.IDToken, &rec.AccessToken, &rec.RefreshToken, &rec.TokenType} {
			v, ok := next()
			if !ok {
				return errRecordFormat
			}
			*s = string(v)
		}
	} else {
		for _, s := range rec.strings() {
			v, ok := next()
			if !ok {
				return errRecordFormat
			}
			*s = string(v)
		}
		for _, t := range rec.tokens() {
			if len(b) == 0 {
				return errRecordFormat
			}
			kind := b[0]
			b = b[1:]
			switch kind {
			case tokenPlain:
				v, ok := next()
				if !ok {
					return errRecordFormat
				}
				*t = string(v)
			case tokenJWT:
				var sb strings.Builder
				for i := range 3 {
					v, ok := next()
					if !ok {
						return errRecordFormat
					}
					if i > 0 {
						sb.WriteByte('.')
					}
					sb.WriteString(base64.RawURLEncoding.EncodeToString(v))
				}
				*t = sb.String()
			default:
				return errRecordFormat
			}
		}
	}
	for _, t := range []*time.Time{&rec.Expiry, &rec.CreatedAt, &rec.ExpiresAt} {
		if version == recordVersionV2 {
			v, n := binary.Varint(b)
			if n <= 0 {
				return errRecordFormat
			}
			*t = time.Unix(0, v)
			b = b[n:]
			continue
		}
		sec, n := binary.Varint(b)
		if n <= 0 {
			return errRecordFormat
		}
		b = b[n:]
		nsec, n := binary.Uvarint(b)
		if n <= 0 || nsec >= 1e9 {
			return errRecordFormat
		}
		b = b[n:]
		*t = time.Unix(sec, int64(nsec))
	}
	if len(b) != 0 {
		return errRecordFormat
	}
	return nil
}
