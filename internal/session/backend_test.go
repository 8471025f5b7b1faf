package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for Memory and Settings.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventually polls cond until it reports true, for at most a second. It is
// only for observing a real Redis TTL run out; with an injected clock cond
// holds on the first call.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 1s", what, state)
		}
		<-tick.C
	}
}

// TTLs of the conformance suite: short ones run out during the test (the
// Redis backend really waits for them), long ones must not.
const (
	shortTTL = 100 * time.Millisecond
	pastTTL  = 150 * time.Millisecond // how far tests advance to expire shortTTL
	longTTL  = time.Minute
)

// testBackend is the conformance suite for the Backend contract in
// store.go. newBackend returns a fresh, empty backend for one subtest and a
// function that lets d pass for it: an injected clock advanced, or real time
// waited for.
func testBackend(t *testing.T, newBackend func(t *testing.T) (Backend, func(d time.Duration))) {
	ctx := context.Background()

	t.Run("create and get", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		data := []byte{0, 1, 2, 0xff, 0xfe, '\n', 'x'} // binary, not UTF-8
		in := Stored{Version: 0, Seen: 1700000000, Data: slices.Clone(data)}
		if err := b.Create(ctx, "r1", in, longTTL); err != nil {
			t.Fatalf("Create: %v", err)
		}
		in.Data[0] = 'M' // the backend must have kept its own copy
		got, err := b.Get(ctx, "r1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		want := Stored{Version: 0, Seen: 1700000000, Data: data}
		if !equalStored(got, want) {
			t.Fatalf("Get = %+v, want %+v", got, want)
		}
		got.Data[0] = 'M'
		if again, _ := b.Get(ctx, "r1"); !equalStored(again, want) {
			t.Fatalf("Get after mutating the returned data = %+v, want %+v", again, want)
		}

		if err := b.Create(ctx, "r1", Stored{Data: []byte("other")}, longTTL); !errors.Is(err, ErrExists) {
			t.Fatalf("Create on a taken id: err = %v, want ErrExists", err)
		}
		if got, _ := b.Get(ctx, "r1"); !equalStored(got, want) {
			t.Fatalf("failed Create changed the record: %+v, want %+v", got, want)
		}
		if _, err := b.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(missing): err = %v, want ErrNotFound", err)
		}
		// Create keeps the caller's version.
		if err := b.Create(ctx, "r2", Stored{Version: 7, Seen: 1, Data: []byte("d")}, longTTL); err != nil {
			t.Fatalf("Create r2: %v", err)
		}
		if got, _ := b.Get(ctx, "r2"); got.Version != 7 {
			t.Fatalf("Create with Version 7: Get().Version = %d, want 7", got.Version)
		}
	})

	t.Run("update is compare-and-set", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		if err := b.Create(ctx, "r", Stored{Seen: 10, Data: []byte("v0")}, longTTL); err != nil {
			t.Fatalf("Create: %v", err)
		}
		steps := []struct {
			name    string
			prev    int64
			data    string
			wantErr error
			want    Stored // after the step
		}{
			{"first update", 0, "v1", nil, Stored{Version: 1, Seen: 11, Data: []byte("v1")}},
			{"stale version", 0, "lost", ErrConflict, Stored{Version: 1, Seen: 11, Data: []byte("v1")}},
			{"future version", 5, "lost", ErrConflict, Stored{Version: 1, Seen: 11, Data: []byte("v1")}},
			{"second update", 1, "v2", nil, Stored{Version: 2, Seen: 11, Data: []byte("v2")}},
		}
		for _, s := range steps {
			// Update stores prev+1 whatever Version the caller passes.
			err := b.Update(ctx, "r", s.prev, Stored{Version: 99, Seen: 11, Data: []byte(s.data)}, longTTL)
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: Update(prev=%d) err = %v, want %v", s.name, s.prev, err, s.wantErr)
			}
			got, err := b.Get(ctx, "r")
			if err != nil || !equalStored(got, s.want) {
				t.Fatalf("%s: Get = %+v, %v; want %+v", s.name, got, err, s.want)
			}
		}
		if err := b.Update(ctx, "missing", 0, Stored{Data: []byte("x")}, longTTL); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update(missing): err = %v, want ErrNotFound", err)
		}
		if _, err := b.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update(missing) created a record: Get err = %v, want ErrNotFound", err)
		}
	})

	t.Run("concurrent updates: one wins", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		if err := b.Create(ctx, "r", Stored{Data: []byte("v0")}, longTTL); err != nil {
			t.Fatalf("Create: %v", err)
		}
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = b.Update(ctx, "r", 0, Stored{Data: fmt.Appendf(nil, "w%d", i)}, longTTL)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("updates %d and %d both won the same version", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ErrConflict):
				t.Fatalf("update %d: err = %v, want nil or ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no update won: %v", errs)
		}
		got, _ := b.Get(ctx, "r")
		if want := fmt.Sprintf("w%d", winner); got.Version != 1 || string(got.Data) != want {
			t.Fatalf("Get = version %d data %q, want version 1 data %q", got.Version, got.Data, want)
		}
	})

	t.Run("touch keeps data and version", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		if err := b.Create(ctx, "r", Stored{Seen: 10, Data: []byte("v0")}, longTTL); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := b.Update(ctx, "r", 0, Stored{Seen: 20, Data: []byte("v1")}, longTTL); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if err := b.Touch(ctx, "r", 30, longTTL); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		want := Stored{Version: 1, Seen: 30, Data: []byte("v1")}
		if got, err := b.Get(ctx, "r"); err != nil || !equalStored(got, want) {
			t.Fatalf("Get after Touch = %+v, %v; want %+v", got, err, want)
		}
		// A touch does not count as an update: the reader's version stays valid.
		if err := b.Update(ctx, "r", 1, Stored{Seen: 40, Data: []byte("v2")}, longTTL); err != nil {
			t.Fatalf("Update at the version read before Touch: %v", err)
		}
		if err := b.Touch(ctx, "missing", 1, longTTL); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Touch(missing): err = %v, want ErrNotFound", err)
		}
		if _, err := b.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Touch(missing) created a record: Get err = %v, want ErrNotFound", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		if err := b.Create(ctx, "r", Stored{Data: []byte("v0")}, longTTL); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := b.Delete(ctx, "r"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := b.Get(ctx, "r"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if err := b.Update(ctx, "r", 0, Stored{Data: []byte("x")}, longTTL); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update after Delete: err = %v, want ErrNotFound", err)
		}
		if err := b.Delete(ctx, "r"); err != nil {
			t.Fatalf("Delete of a missing record: %v, want nil", err)
		}
		if err := b.Create(ctx, "r", Stored{Data: []byte("again")}, longTTL); err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
	})

	t.Run("record TTL", func(t *testing.T) {
		t.Parallel()
		b, advance := newBackend(t)
		d := []byte("d")
		must(t, "Create gone", b.Create(ctx, "gone", Stored{Data: d}, shortTTL))
		must(t, "Create touched", b.Create(ctx, "touched", Stored{Data: d}, shortTTL))
		must(t, "Touch touched", b.Touch(ctx, "touched", 5, longTTL))
		must(t, "Create updated", b.Create(ctx, "updated", Stored{Data: d}, shortTTL))
		must(t, "Update updated", b.Update(ctx, "updated", 0, Stored{Data: d}, longTTL))
		must(t, "Create shortened-by-touch", b.Create(ctx, "shortened-by-touch", Stored{Data: d}, longTTL))
		must(t, "Touch shortened-by-touch", b.Touch(ctx, "shortened-by-touch", 5, shortTTL))
		must(t, "Create shortened-by-update", b.Create(ctx, "shortened-by-update", Stored{Data: d}, longTTL))
		must(t, "Update shortened-by-update", b.Update(ctx, "shortened-by-update", 0, Stored{Data: d}, shortTTL))

		advance(pastTTL)

		for _, id := range []string{"gone", "shortened-by-touch", "shortened-by-update"} {
			eventually(t, "record "+id, func() (bool, string) {
				_, err := b.Get(ctx, id)
				return errors.Is(err, ErrNotFound), fmt.Sprintf("Get err = %v, want ErrNotFound", err)
			})
		}
		for _, id := range []string{"touched", "updated"} {
			if _, err := b.Get(ctx, id); err != nil {
				t.Errorf("record %s, whose TTL was extended, expired: %v", id, err)
			}
		}
		if err := b.Touch(ctx, "gone", 6, longTTL); !errors.Is(err, ErrNotFound) {
			t.Errorf("Touch of an expired record: err = %v, want ErrNotFound", err)
		}
		if err := b.Update(ctx, "gone", 0, Stored{Data: d}, longTTL); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update of an expired record: err = %v, want ErrNotFound", err)
		}
		if err := b.Create(ctx, "gone", Stored{Data: d}, longTTL); err != nil {
			t.Errorf("Create over an expired record: %v", err)
		}
	})

	t.Run("index add, members, remove", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		if got, err := b.IndexMembers(ctx, "ix"); err != nil || len(got) != 0 {
			t.Fatalf("IndexMembers(missing) = %q, %v; want empty, nil", got, err)
		}
		must(t, "IndexAdd a", b.IndexAdd(ctx, "ix", "a", longTTL))
		must(t, "IndexAdd b", b.IndexAdd(ctx, "ix", "b", longTTL))
		must(t, "IndexAdd a again", b.IndexAdd(ctx, "ix", "a", longTTL))
		must(t, "IndexAdd other", b.IndexAdd(ctx, "other", "c", longTTL))
		wantMembers(t, b, "ix", "a", "b")
		wantMembers(t, b, "other", "c")
		must(t, "IndexRemove a", b.IndexRemove(ctx, "ix", "a"))
		wantMembers(t, b, "ix", "b")
		must(t, "IndexRemove absent member", b.IndexRemove(ctx, "ix", "zzz"))
		must(t, "IndexRemove missing index", b.IndexRemove(ctx, "nope", "a"))
		must(t, "IndexRemove b", b.IndexRemove(ctx, "ix", "b"))
		wantMembers(t, b, "ix")
		// Index keys and record IDs are separate namespaces.
		must(t, "Create", b.Create(ctx, "ix", Stored{Data: []byte("rec")}, longTTL))
		wantMembers(t, b, "other", "c")
		if _, err := b.Get(ctx, "other"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(index key) err = %v, want ErrNotFound", err)
		}
	})

	t.Run("index TTL only grows", func(t *testing.T) {
		t.Parallel()
		b, advance := newBackend(t)
		must(t, "short", b.IndexAdd(ctx, "short", "a", shortTTL))
		must(t, "extended 1", b.IndexAdd(ctx, "extended", "a", shortTTL))
		must(t, "extended 2", b.IndexAdd(ctx, "extended", "b", longTTL))
		must(t, "kept 1", b.IndexAdd(ctx, "kept", "a", longTTL))
		must(t, "kept 2", b.IndexAdd(ctx, "kept", "b", shortTTL))

		advance(pastTTL)

		eventually(t, "index short", func() (bool, string) {
			got, err := b.IndexMembers(ctx, "short")
			return err == nil && len(got) == 0, fmt.Sprintf("members %q, err %v", got, err)
		})
		wantMembers(t, b, "extended", "a", "b")
		wantMembers(t, b, "kept", "a", "b")
	})

	t.Run("put once, take once", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		val := []byte{0, 'v', 0xff}
		must(t, "PutOnce", b.PutOnce(ctx, "k", val, longTTL))
		if err := b.PutOnce(ctx, "k", []byte("replay"), longTTL); !errors.Is(err, ErrExists) {
			t.Fatalf("second PutOnce: err = %v, want ErrExists", err)
		}
		got, err := b.Take(ctx, "k")
		if err != nil || !bytes.Equal(got, val) {
			t.Fatalf("Take = %q, %v; want %q, nil", got, err, val)
		}
		if got, err := b.Take(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second Take = %q, %v; want ErrNotFound", got, err)
		}
		if got, err := b.Take(ctx, "never"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Take(missing) = %q, %v; want ErrNotFound", got, err)
		}
		must(t, "PutOnce after Take", b.PutOnce(ctx, "k", []byte("next"), longTTL))
		// One-time values and records are separate namespaces.
		must(t, "Create", b.Create(ctx, "k", Stored{Data: []byte("rec")}, longTTL))
		if got, err := b.Take(ctx, "k"); err != nil || string(got) != "next" {
			t.Fatalf("Take after a Create of the same name = %q, %v; want %q", got, err, "next")
		}
	})

	t.Run("put once TTL", func(t *testing.T) {
		t.Parallel()
		b, advance := newBackend(t)
		must(t, "PutOnce a", b.PutOnce(ctx, "a", []byte("1"), shortTTL))
		must(t, "PutOnce b", b.PutOnce(ctx, "b", []byte("1"), shortTTL))
		must(t, "PutOnce kept", b.PutOnce(ctx, "kept", []byte("1"), longTTL))

		advance(pastTTL)

		eventually(t, "value a", func() (bool, string) {
			got, err := b.Take(ctx, "a")
			return errors.Is(err, ErrNotFound), fmt.Sprintf("Take = %q, %v; want ErrNotFound", got, err)
		})
		eventually(t, "value b", func() (bool, string) {
			err := b.PutOnce(ctx, "b", []byte("2"), longTTL)
			return err == nil, fmt.Sprintf("PutOnce err = %v, want nil", err)
		})
		if got, err := b.Take(ctx, "b"); err != nil || string(got) != "2" {
			t.Errorf("Take(b) = %q, %v; want %q", got, err, "2")
		}
		if err := b.PutOnce(ctx, "kept", []byte("2"), longTTL); !errors.Is(err, ErrExists) {
			t.Errorf("PutOnce on a live value: err = %v, want ErrExists", err)
		}
	})

	t.Run("take is exactly once under concurrency", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		const takers = 20
		for round := range 5 {
			key := fmt.Sprintf("k%d", round)
			must(t, "PutOnce", b.PutOnce(ctx, key, []byte(key), longTTL))
			var won atomic.Int32
			errs := make(chan error, takers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range takers {
				wg.Go(func() {
					<-start
					v, err := b.Take(ctx, key)
					switch {
					case err == nil && string(v) == key:
						won.Add(1)
					case err == nil:
						errs <- fmt.Errorf("Take = %q, want %q", v, key)
					case !errors.Is(err, ErrNotFound):
						errs <- fmt.Errorf("Take err = %w, want nil or ErrNotFound", err)
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("round %d: %v", round, err)
			}
			if n := won.Load(); n != 1 {
				t.Fatalf("round %d: %d of %d concurrent Takes got the value, want exactly 1", round, n, takers)
			}
		}
	})

	t.Run("lock is exclusive", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		const contenders = 20
		unlocks := make(chan func(), contenders)
		errs := make(chan error, contenders)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range contenders {
			wg.Go(func() {
				<-start
				unlock, err := b.Lock(ctx, "L", longTTL)
				switch {
				case err == nil:
					unlocks <- unlock
				case !errors.Is(err, ErrConflict):
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(unlocks)
		close(errs)
		for err := range errs {
			t.Errorf("Lock err = %v, want nil or ErrConflict", err)
		}
		var held []func()
		for u := range unlocks {
			held = append(held, u)
		}
		if len(held) != 1 {
			t.Fatalf("%d of %d concurrent Locks succeeded, want exactly 1", len(held), contenders)
		}
		if _, err := b.Lock(ctx, "L", longTTL); !errors.Is(err, ErrConflict) {
			t.Fatalf("Lock while held: err = %v, want ErrConflict", err)
		}
		other, err := b.Lock(ctx, "other", longTTL)
		if err != nil {
			t.Fatalf("Lock of another key: %v", err)
		}
		other()
		held[0]()
		held[0]() // idempotent
		again, err := b.Lock(ctx, "L", longTTL)
		if err != nil {
			t.Fatalf("Lock after unlock: %v", err)
		}
		again()
	})

	t.Run("lock gives mutual exclusion", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		const workers, rounds = 8, 5
		var inside, maxInside, done atomic.Int32
		deadline := time.Now().Add(10 * time.Second)
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for n := 0; n < rounds; {
					if time.Now().After(deadline) {
						errs <- errors.New("no progress for 10s")
						return
					}
					unlock, err := b.Lock(ctx, "M", longTTL)
					if errors.Is(err, ErrConflict) {
						runtime.Gosched()
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					in := inside.Add(1)
					for {
						m := maxInside.Load()
						if in <= m || maxInside.CompareAndSwap(m, in) {
							break
						}
					}
					runtime.Gosched()
					inside.Add(-1)
					unlock()
					n++
					done.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("worker: %v", err)
		}
		if m := maxInside.Load(); m != 1 {
			t.Fatalf("%d holders inside the lock at once, want 1", m)
		}
		if n := done.Load(); n != workers*rounds {
			t.Fatalf("%d critical sections ran, want %d", n, workers*rounds)
		}
	})

	t.Run("lock lease expires and unlock is owner-only", func(t *testing.T) {
		t.Parallel()
		b, advance := newBackend(t)
		unlockA, err := b.Lock(ctx, "L", shortTTL)
		if err != nil {
			t.Fatalf("Lock A: %v", err)
		}

		advance(pastTTL)

		var unlockB func()
		eventually(t, "lease of A", func() (bool, string) {
			unlockB, err = b.Lock(ctx, "L", longTTL)
			return err == nil, fmt.Sprintf("Lock B err = %v, want nil", err)
		})
		unlockA() // A's lease is over: this must not release B's lock
		if _, err := b.Lock(ctx, "L", longTTL); !errors.Is(err, ErrConflict) {
			t.Fatalf("Lock after the old holder's unlock: err = %v, want ErrConflict (B still holds it)", err)
		}
		unlockB()
		unlockC, err := b.Lock(ctx, "L", longTTL)
		if err != nil {
			t.Fatalf("Lock after B's unlock: %v", err)
		}
		unlockC()
	})

	t.Run("ping", func(t *testing.T) {
		t.Parallel()
		b, _ := newBackend(t)
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func equalStored(a, b Stored) bool {
	return a.Version == b.Version && a.Seen == b.Seen && bytes.Equal(a.Data, b.Data)
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantMembers(t *testing.T, b Backend, key string, want ...string) {
	t.Helper()
	got, err := b.IndexMembers(context.Background(), key)
	if err != nil {
		t.Fatalf("IndexMembers(%q): %v", key, err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("IndexMembers(%q) = %q, want %q", key, got, want)
	}
}

func TestMemoryBackend(t *testing.T) {
	t.Parallel()
	testBackend(t, func(t *testing.T) (Backend, func(time.Duration)) {
		clock := newFakeClock()
		return NewMemory(clock.Now), clock.Advance
	})
}

func TestMemorySweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	must(t, "Create", m.Create(ctx, "r", Stored{Data: []byte("d")}, shortTTL))
	must(t, "IndexAdd", m.IndexAdd(ctx, "ix", "r", shortTTL))
	must(t, "PutOnce", m.PutOnce(ctx, "k", []byte("v"), shortTTL))
	if _, err := m.Lock(ctx, "L", shortTTL); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	must(t, "Create kept", m.Create(ctx, "kept", Stored{Data: []byte("d")}, longTTL))
	clock.Advance(pastTTL)
	m.Sweep()
	m.mu.Lock()
	sizes := []int{len(m.records), len(m.indexes), len(m.once), len(m.locks)}
	m.mu.Unlock()
	if want := []int{1, 0, 0, 0}; !slices.Equal(sizes, want) {
		t.Fatalf("after Sweep: records, indexes, once, locks = %v, want %v", sizes, want)
	}
}
