package bench

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"net/http"
	"net/http/httptest"

	"github.com/bff-dev/bff/internal/session"
)

func TestScratchHeap(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	runtime.MemProfileRate = 1
	keys := newKeyring(t)
	mem := session.NewMemory(nil)
	mgr := benchManager(mem.CookieStore(), mem, keys)
	b := &testing.B{}
	_ = b
	for i := range 2000 {
		req := newReq()
		if err := mgr.Start(rec(), req, zitadelRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	f, _ := os.Create("/tmp/inuse.heap")
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	runtime.KeepAlive(mem)
}

func newReq() *http.Request { return httptest.NewRequest(http.MethodGet, "http://127.0.0.1/auth/callback", nil) }
func rec() *httptest.ResponseRecorder { return httptest.NewRecorder() }
