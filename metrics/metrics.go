// Package metrics serves a running formation's figures to Prometheus
// (`mhrun start --metrics ADDR`, path /metrics). Every scrape asks the
// runner for its status rows, the same that `mhrun status` prints, so the
// figures are as fresh as the scrape and nothing is sampled in between.
//
// Per instance (labels process="web", instance="web.2"):
//
//	mhrun_instance_state{state="running"}     1 for the instance's state
//	mhrun_instance_ready                      1 once its ready= check passed
//	mhrun_instance_restarts_total             restarts since the formation started
//	mhrun_instance_cpu_seconds_total          CPU time of its live process tree
//	mhrun_instance_resident_memory_bytes      RSS of its process tree
//	mhrun_instance_start_time_seconds         when its process started (unix)
//
// Per balanced process (label process): mhrun_balancer_open_connections and
// mhrun_balancer_connections_total. mhrun's own process_* and go_* metrics
// come with them. The CPU counter sums the tree's live processes: a child
// that exits takes its share with it, and Prometheus reads the drop as a
// counter reset, as it does a restart.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mhrun/socket"
)

// StatusFunc gives the formation's status rows.
type StatusFunc func(ctx context.Context) ([]socket.Instance, error)

// askTimeout bounds one scrape's question to the runner.
const askTimeout = 5 * time.Second

var (
	instLabels = []string{"process", "instance"}
	descState  = prometheus.NewDesc("mhrun_instance_state",
		"The instance's state: 1 for the state it is in.", append(instLabels, "state"), nil)
	descReady = prometheus.NewDesc("mhrun_instance_ready",
		"1 when the instance is running and its ready= check has passed.", instLabels, nil)
	descRestarts = prometheus.NewDesc("mhrun_instance_restarts_total",
		"Restarts of the instance since the formation started.", instLabels, nil)
	descCPU = prometheus.NewDesc("mhrun_instance_cpu_seconds_total",
		"CPU time, user and system, of the instance's live process tree.", instLabels, nil)
	descRSS = prometheus.NewDesc("mhrun_instance_resident_memory_bytes",
		"Resident memory of the instance's process tree.", instLabels, nil)
	descStart = prometheus.NewDesc("mhrun_instance_start_time_seconds",
		"Start time of the instance's process, in seconds since the epoch.", instLabels, nil)
	descOpen = prometheus.NewDesc("mhrun_balancer_open_connections",
		"Connections open through the process's balancer.", []string{"process"}, nil)
	descServed = prometheus.NewDesc("mhrun_balancer_connections_total",
		"Connections the process's balancer has served.", []string{"process"}, nil)
	descUp = prometheus.NewDesc("mhrun_up",
		"1 when the runner answered this scrape's status request.", nil, nil)
)

// collector turns one status answer into metrics.
type collector struct{ status StatusFunc }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descReady, descRestarts, descCPU, descRSS, descStart, descOpen, descServed, descUp} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	rows, err := c.status(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	type pool struct{ open, served int64 }
	pools := map[string]*pool{}
	var order []string
	for _, r := range rows {
		l := []string{r.Process, r.Name}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, 1, r.Process, r.Name, r.State)
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b2f(r.Ready), l...)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(r.Restarts), l...)
		if r.PID > 0 {
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, r.CPUTime, l...)
			ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(r.RSS), l...)
			ch <- prometheus.MustNewConstMetric(descStart, prometheus.GaugeValue, float64(r.Started.UnixNano())/1e9, l...)
		}
		if r.Balanced {
			p := pools[r.Process]
			if p == nil {
				p = &pool{}
				pools[r.Process] = p
				order = append(order, r.Process)
			}
			p.open += r.Conns
			p.served += r.Served
		}
	}
	for _, name := range order {
		p := pools[name]
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(p.open), name)
		ch <- prometheus.MustNewConstMetric(descServed, prometheus.CounterValue, float64(p.served), name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves /metrics: the formation's figures and mhrun's own
// process and Go runtime metrics.
func Handler(status StatusFunc) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{status},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("mhrun: metrics at /metrics\n"))
	})
	return mux
}
