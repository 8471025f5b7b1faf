package session

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
)

func TestIDCodec(t *testing.T) {
	t.Parallel()
	deadline := time.Unix(1_800_000_000, 123)
	for _, values := range []map[string]any{{idKey: "abc123"}, {}} {
		b, err := idCodec{}.Encode(deadline, values)
		if err != nil {
			t.Fatal(err)
		}
		d, got, err := idCodec{}.Decode(b)
		if err != nil || !d.Equal(deadline) || got[idKey] != values[idKey] || len(got) != len(values) {
			t.Fatalf("round trip of %v: %v %v %v", values, d, got, err)
		}
	}
	if _, err := (idCodec{}).Encode(deadline, map[string]any{"other": 1}); err == nil {
		t.Fatal("encoded a value other than the ID")
	}
	// Foreign values (gob, garbage, huge) are an expired empty session,
	// never decoded by gob: a crafted gob value can claim any map size.
	old, err := scs.GobCodec{}.Encode(deadline, map[string]any{idKey: "legacy"})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{old, {0xff, 1, 2}, nil, append([]byte{idCodecVersion}, make([]byte, 4096)...)} {
		d, got, err := (idCodec{}).Decode(b)
		if err != nil || len(got) != 0 || !d.IsZero() {
			t.Fatalf("Decode(%d foreign bytes) = %v %v %v, want an expired empty session", len(b), d, got, err)
		}
	}
}

func TestRecordEncoding(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 5)
	in := &Record{App: "web", Subject: "u", SID: "s", Nonce: "n", IDToken: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl", AccessToken: "a.b", RefreshToken: "r.bm90.X1", TokenType: "Bearer",
		Claims: NewClaims(map[string]any{"email": "u@example.com"}), Expiry: now, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}
	var got Record
	if err := decodeRecord(encodeRecord(in), &got); err != nil {
		t.Fatal(err)
	}
	if got.App != in.App || got.Subject != in.Subject || got.SID != in.SID || got.Nonce != in.Nonce || got.IDToken != in.IDToken ||
		got.AccessToken != in.AccessToken || got.RefreshToken != in.RefreshToken || got.TokenType != in.TokenType ||
		string(got.Claims) != string(in.Claims) || !got.Expiry.Equal(in.Expiry) || !got.CreatedAt.Equal(in.CreatedAt) || !got.ExpiresAt.Equal(in.ExpiresAt) {
		t.Fatalf("round trip: %+v, want %+v", got, in)
	}
	b := encodeRecord(in)
	for i := range b {
		var r Record
		_ = decodeRecord(b[:i], &r) // truncated: an error, never a panic
		if i > 0 && decodeRecord(b[:i], &r) == nil {
			t.Fatalf("truncated record (%d of %d bytes) decoded", i, len(b))
		}
	}
	legacy, _ := json.Marshal(in)
	var old Record
	if err := decodeRecord(legacy, &old); err != nil || old.AccessToken != "a.b" || old.Claims.Map()["email"] != "u@example.com" {
		t.Fatalf("JSON record: %+v %v", old, err)
	}
	// JWTs shrink; anything that is not exactly a base64url JWT is kept as is.
	for _, tok := range []string{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl", "a.b.c", "abc", "a..", "YQ==.YQ.YQ", "x.y.z=", "", "...", "a.b.c.d"} {
		r := &Record{AccessToken: tok, IDToken: tok, RefreshToken: tok}
		var got Record
		if err := decodeRecord(encodeRecord(r), &got); err != nil || got.AccessToken != tok || got.IDToken != tok || got.RefreshToken != tok {
			t.Fatalf("token %q round trip: %q %v", tok, got.AccessToken, err)
		}
	}
}

// TestRecordTimes: times far from now (zero, year 2286, year 9999) survive.
func TestRecordTimes(t *testing.T) {
	t.Parallel()
	for _, tm := range []time.Time{{}, time.Unix(9999999999, 0), time.Date(9999, 12, 31, 0, 0, 0, 999, time.UTC), time.Unix(-1, 5)} {
		var got Record
		if err := decodeRecord(encodeRecord(&Record{Expiry: tm, CreatedAt: tm, ExpiresAt: tm}), &got); err != nil || !got.Expiry.Equal(tm) || !got.ExpiresAt.Equal(tm) || got.Expiry.IsZero() != tm.IsZero() {
			t.Fatalf("time %v came back as %v (%v)", tm, got.Expiry, err)
		}
	}
}

// FuzzDecodeRecord: whatever a compromised store holds, decoding never
// panics, and what decodes re-encodes to a record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&Record{App: "a", IDToken: "eyJhIjoxfQ.eyJiIjoyfQ.c2ln", AccessToken: "x", Expiry: time.Unix(1, 2)}))
	f.Add([]byte{recordVersion})
	f.Add([]byte{recordVersionV2, 0, 0})
	f.Add([]byte(`{"sub":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec Record
		if decodeRecord(b, &rec) != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		var again Record
		if err := decodeRecord(encodeRecord(&rec), &again); err != nil ||
			again.AccessToken != rec.AccessToken || again.IDToken != rec.IDToken || again.RefreshToken != rec.RefreshToken ||
			again.Subject != rec.Subject || !again.Expiry.Equal(rec.Expiry) || string(again.Claims) != string(rec.Claims) {
			t.Fatalf("re-encoding changed the record: %+v vs %+v (%v)", again, rec, err)
		}
	})
}
