// Package bench holds the benchmarks behind `make bench`: the performance
// targets of SPEC §8, each measured against the real thing on loopback (the
// embedded OpenID Provider, the BFF behind net/http, a trivial upstream and,
// when one answers at 127.0.0.1:6379, Redis under a unique key prefix that
// is deleted afterwards).
//
// Every target is reported as a custom metric of one run, so the ratios come
// from the same machine state:
//
//   - BenchmarkProxy: req/s of a bare httputil.ReverseProxy and of the BFF
//     (memory and Redis stores) to the same upstream, the ratio BFF/bare
//     (x-bare; targets ≥ 0.85 memory, ≥ 0.70 Redis) and the p99 latency the
//     BFF adds to a sequential request (added-p99-us; target < 1000);
//   - BenchmarkMe: /auth/me req/s over loopback (target ≥ 20 000 on 2
//     cores) and in-process, the handler's own ceiling;
//   - BenchmarkSessionMemory: bytes per session with ZITADEL-size tokens
//     (B/session; target ≤ 4096) in the memory store and in Redis;
//   - BenchmarkRefreshStorm: 100 concurrent API calls on an expired access
//     token cause exactly one refresh and no failure (the benchmark fails
//     otherwise).
//
// The package has no non-test code besides this comment. Run it with
//
//	go test -run '^$' -bench . -benchmem -benchtime 2s ./internal/bench/
package bench
