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
	old, err := scs.GobCodec{}.Encode(deadline, map[string]any{idKey: "legacy"})
	if err != nil {
		t.Fatal(err)
	}
	if d, got, err := (idCodec{}).Decode(old); err != nil || got[idKey] != "legacy" || !d.Equal(deadline) {
		t.Fatalf("gob value: %v %v %v", d, got, err)
	}
	if _, _, err := (idCodec{}).Decode([]byte{0xff, 1, 2}); err == nil {
		t.Fatal("garbage decoded")
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
