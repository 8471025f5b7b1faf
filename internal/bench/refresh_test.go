package bench

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// stormSize is the number of concurrent API calls per storm.
const stormSize = 100

// BenchmarkRefreshStorm checks SPEC §8's last target: stormSize concurrent
// API calls on an expired access token cause exactly one refresh at the
// provider and all succeed. One op is one storm: the stored access token
// is expired, then the calls are released at once. The benchmark fails on
// any storm with another refresh count or a failed call.
//
//   - memory: one BFF (single-flight in the process);
//   - redis-2-replicas: two BFFs sharing Redis, the calls split between
//     them (the Redis lock and the re-read after it). Skipped without Redis.
func BenchmarkRefreshStorm(b *testing.B) {
	up := newUpstream(b)
	mem := startStack(b, newMemoryStore(b), up.URL+"/", 1)
	var red *stack
	rs, redisErr := newRedisStore(b)
	if redisErr == nil {
		red = startStack(b, rs, up.URL+"/", 2)
	}
	b.Run("memory", func(b *testing.B) {
		refreshStorms(b, mem)
	})
	b.Run("redis-2-replicas", func(b *testing.B) {
		if red == nil {
			b.Skipf("no Redis: %v", redisErr)
		}
		refreshStorms(b, red)
	})
}

func refreshStorms(b *testing.B, s *stack) {
	b.Helper()
	client := newLoadClient(b)
	for r := range s.bffURLs {
		mustOK(b, client, s.apiRequest(b, r))
	}
	var refreshes int
	var took time.Duration
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		s.expireAccessToken(b)
		reqs := make([]*http.Request, stormSize)
		for i := range reqs {
			reqs[i] = s.apiRequest(b, i%len(s.bffURLs))
		}
		before := s.idp.Stats().Refreshes
		b.StartTimer()

		start := time.Now()
		failures := storm(client, reqs)
		took += time.Since(start)

		got := s.idp.Stats().Refreshes - before
		refreshes += got
		if got != 1 || len(failures) > 0 {
			b.Fatalf("storm %d of %d calls over %d replica(s): %d refreshes (want 1), %d failed calls (want 0)%s",
				n+1, stormSize, len(s.bffURLs), got, len(failures), firstLines(failures, 3))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(refreshes)/float64(b.N), "refreshes/storm")
	b.ReportMetric(0, "failures")
	b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "storm-ms")
}

// storm sends every request at once and describes the ones that failed.
func storm(client *http.Client, reqs []*http.Request) []string {
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for _, req := range reqs {
		wg.Go(func() {
			<-start
			resp, err := client.Do(req)
			if err != nil {
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %d %s", req.URL.Host, resp.StatusCode, strings.TrimSpace(string(body))))
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return failures
}

func firstLines(lines []string, n int) string {
	if len(lines) == 0 {
		return ""
	}
	return ":\n  " + strings.Join(lines[:min(n, len(lines))], "\n  ")
}
