package session

import (
	"encoding/binary"
	"errors"
	"time"
)

// idCodec is the scs Codec of the cookie mapping: version 0x01 | deadline
// (Unix ns, 8 bytes) | optional ID. It replaces scs's gob codec, which
// builds a decoder per call and, fed a crafted value from a compromised
// store, allocates whatever sizes the input claims. Anything else decodes
// as an expired, empty session: the BFF keys its records by a hash of the
// cookie token and never trusts this value.
type idCodec struct{}

const idCodecVersion = 0x01

// maxCodecValue bounds what Decode accepts.
const maxCodecValue = 512

var errIDCodecValues = errors.New("session: the cookie mapping holds only the record ID")

// Encode implements scs.Codec.
func (idCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	id, _ := values[idKey].(string)
	if len(values) > 1 || (len(values) == 1 && id == "") {
		return nil, errIDCodecValues
	}
	b := make([]byte, 9+len(id))
	b[0] = idCodecVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(deadline.UnixNano()))
	copy(b[9:], id)
	return b, nil
}

// Decode implements scs.Codec.
func (idCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	if len(b) < 9 || len(b) > maxCodecValue || b[0] != idCodecVersion {
		return time.Time{}, map[string]any{}, nil
	}
	deadline := time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9])))
	values := map[string]any{}
	if len(b) > 9 {
		values[idKey] = string(b[9:])
	}
	return deadline, values, nil
}
