package bench

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"strings"
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

func TestScratchJWT(t *testing.T) {
	for _, n := range []int{1200, 1500} {
		j := fakeJWT(n, "280000000000000001")
		t.Log(len(j), j[:200])
	}
}

func TestScratchJWT2(t *testing.T) {
	for _, n := range []int{1200, 1500} {
		j := fakeJWT(n, "280000000000000001")
		t.Log(len(j), len(strings.Split(j, ".")[0]), len(strings.Split(j, ".")[1]), len(strings.Split(j, ".")[2]))
	}
}
