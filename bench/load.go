//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// loadWorkers is how many goroutines the reload benchmark's load loop runs.
const loadWorkers = 8

// loaded is what a load loop saw.
type loaded struct {
	took   time.Duration
	done   int64            // requests answered 200 with a hello body
	failed int64            // every other outcome
	errs   map[string]int64 // failures by kind
	by     map[string]int64 // answers by body ("hello from PID"): which instance answered
}

func (l loaded) String() string {
	s := fmt.Sprintf("%d requests in %.2f s (%.0f/s), %d failed", l.done+l.failed, l.took.Seconds(), float64(l.done+l.failed)/l.took.Seconds(), l.failed)
	var kinds []string
	for k, n := range l.errs {
		kinds = append(kinds, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(kinds)
	if len(kinds) > 0 {
		s += " (" + strings.Join(kinds, "; ") + ")"
	}
	var who []string
	for k, n := range l.by {
		who = append(who, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(who)
	return s + "; answers by " + strings.Join(who, ", ")
}

// load runs loadWorkers goroutines, each doing GET url back to back, a
// new connection every time (keep-alive off), so that every request goes
// through the balancer's choice of instance and a connection refused or
// reset shows as a failure of that request. It runs during(): for `pre`
// before it, until it returns, and for `post` after it, or, with during
// nil, for pre alone. Every request has a 5 s timeout and the whole load
// ends after 90 s whatever during does. Nothing is retried.
func (b *bench) load(url string, pre, post time.Duration, during func() error) (loaded, error) {
	tr := &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: -1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	l := loaded{errs: map[string]int64{}, by: map[string]int64{}}
	var mu sync.Mutex
	took, err := b.drive(loadWorkers, pre, post, during, func(ctx context.Context) {
		done, failed := int64(0), int64(0)
		errs, by := map[string]int64{}, map[string]int64{}
		for ctx.Err() == nil {
			kind, body := get(ctx, client, url)
			switch {
			case ctx.Err() != nil && kind != "": // cut short by the end of the load: not counted
			case kind != "":
				failed++
				errs[kind]++
			default:
				done++
				by[body]++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		l.done += done
		l.failed += failed
		for k, n := range errs {
			l.errs[k] += n
		}
		for k, n := range by {
			l.by[k] += n
		}
	})
	l.took = took
	return l, err
}

// drive runs a load: n workers, each work(ctx) until ctx ends, through pre,
// during() and post as load describes; the whole load ends after 90 s
// whatever during does. It returns how long the workers ran and during's
// error, or the bench's own once it is cancelled.
func (b *bench) drive(n int, pre, post time.Duration, during func() error, work func(ctx context.Context)) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	t0 := time.Now()
	for range n {
		wg.Go(func() { work(ctx) })
	}
	var err error
	if b.pause(pre) == nil && during != nil {
		err = during()
		if err == nil {
			b.pause(post)
		}
	}
	cancel()
	wg.Wait()
	took := time.Since(t0)
	if err == nil && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return took, err
}

// get does one request: kind is "" and body the trimmed answer on a 200
// whose body starts "hello from ", else kind says what went wrong.
func get(ctx context.Context, client *http.Client, url string) (kind, body string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error(), ""
	}
	resp, err := client.Do(req)
	if err != nil {
		return errKind(err), ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return "body: " + errKind(err), ""
	case resp.StatusCode != http.StatusOK:
		return resp.Status, ""
	case !strings.HasPrefix(string(b), "hello from "):
		return fmt.Sprintf("unexpected body %.40q", b), ""
	}
	return "", strings.TrimSpace(string(b))
}

// errKind shortens an error to its kind, without addresses and ports, so
// that failures of one kind count together.
func errKind(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset by peer", "EOF", "broken pipe", "timeout", "Client.Timeout", "cannot assign requested address"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}
