package bench

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// BenchmarkMe measures GET /auth/me with a valid session and the memory
// store (SPEC §8: ≥ 20 000 req/s on 2 cores):
//
//   - loopback: through net/http from an in-process client, whose own cost
//     counts against the same cores;
//   - in-process: Server.ServeHTTP with a recorder, the handler's ceiling.
func BenchmarkMe(b *testing.B) {
	up := newUpstream(b)
	s := startStack(b, newMemoryStore(b), up.URL+"/", 1)
	client := newLoadClient(b)
	me := s.request(b, 0, "/auth/me")
	mustOK(b, client, me)

	b.Run("loopback", func(b *testing.B) {
		throughput(b, client, me)
	})
	b.Run("in-process", func(b *testing.B) {
		b.SetParallelism(parallelism)
		var failed, lastStatus atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			req := s.inProcessRequest("/auth/me")
			for pb.Next() {
				rec := httptest.NewRecorder()
				s.bffs[0].ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					failed.Add(1)
					lastStatus.Store(int64(rec.Code))
				}
			}
		})
		b.StopTimer()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of %d requests failed (last status %d)", n, b.N, lastStatus.Load())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
