package cli

import (
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads addr's /metrics and parses the exposition.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams
}

// value is the metric of fams named name whose labels include want, or -1.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		}
	}
	return -1
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestMetrics(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: echo web up; exec sleep 1000\nlb: exec env MHRUN_TEST_HELPER=serve " + os.Args[0] + "\n",
		"Procfile.policy": "web: scale=2\nlb: balance=" + strconv.Itoa(freeTCPPort(t)) + "\n",
	})
	addr := freeAddr(t)
	r := startMhrun(t, dir, "start", "--metrics", addr, "-p", strconv.Itoa(20000+rand.IntN(9000)))
	r.waitLine("web.2 | web up")
	web1 := map[string]string{"process": "web", "instance": "web.1"}
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = scrape(t, addr)
		if value(fams, "mhrun_instance_ready", map[string]string{"instance": "lb.1"}) == 1 &&
			value(fams, "mhrun_instance_ready", web1) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready by the deadline: %v", fams["mhrun_instance_ready"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := value(fams, "mhrun_up", nil); v != 1 {
		t.Errorf("mhrun_up = %v", v)
	}
	if v := value(fams, "mhrun_instance_state", map[string]string{"instance": "web.2", "state": "running"}); v != 1 {
		t.Errorf("web.2 running = %v", v)
	}
	if v := value(fams, "mhrun_instance_restarts_total", web1); v != 0 {
		t.Errorf("web.1 restarts = %v", v)
	}
	if v := value(fams, "mhrun_instance_resident_memory_bytes", web1); v <= 0 {
		t.Errorf("web.1 RSS = %v", v)
	}
	start1 := value(fams, "mhrun_instance_start_time_seconds", web1)
	if now := float64(time.Now().Unix()); start1 < now-60 || start1 > now+1 {
		t.Errorf("web.1 started at %v, now is %v", start1, now)
	}
	if v := value(fams, "mhrun_balancer_open_connections", map[string]string{"process": "lb"}); v != 0 {
		t.Errorf("lb open connections = %v", v)
	}
	if fams["process_resident_memory_bytes"] == nil || fams["go_goroutines"] == nil {
		t.Errorf("mhrun's own process and Go metrics are missing")
	}

	if _, stderr, code := runMhrun(t, dir, "restart", "web.1"); code != 0 {
		t.Fatalf("restart: %s", stderr)
	}
	for {
		fams = scrape(t, addr)
		if value(fams, "mhrun_instance_restarts_total", web1) == 1 && value(fams, "mhrun_instance_ready", web1) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web.1's restart not seen: %v", fams["mhrun_instance_restarts_total"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := value(fams, "mhrun_instance_start_time_seconds", web1); v <= start1 {
		t.Errorf("web.1's start time did not move on restart: %v then %v", start1, v)
	}

	// a second runner may not take a port in use; it says so and runs nothing
	other := writeFiles(t, map[string]string{"Procfile": "x: echo x ran > ran; exec sleep 1000\n"})
	_, stderr, code := runMhrun(t, other, "start", "--metrics", addr)
	if code != 1 || !strings.Contains(stderr, "--metrics "+addr+": ") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("port in use: exit %d %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(other, "ran")); err == nil {
		t.Errorf("the formation started although --metrics failed")
	}
}

func TestMetricsAddress(t *testing.T) {
	_, stderr, code := runMhrun(t, writeFiles(t, map[string]string{"Procfile": "x: true\n"}), "start", "--metrics", "9464")
	if code != 1 || !strings.Contains(stderr, "want HOST:PORT") {
		t.Errorf("--metrics 9464: exit %d %q", code, stderr)
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "": false, "0.0.0.0": false, "10.1.2.3": false} {
		if loopback(host) != want {
			t.Errorf("loopback(%q) = %v", host, !want)
		}
	}
}
