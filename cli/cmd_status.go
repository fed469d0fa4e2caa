package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"mhrun/policy"
	"mhrun/socket"
)

// StatusCmd shows every instance of the running formation.
type StatusCmd struct {
	ControlFlags
	JSON bool `help:"Print the rows as JSON."`
}

// Run asks the runner for its instances and prints them.
func (c *StatusCmd) Run(app *App) error {
	resp, err := c.call(socket.Request{Cmd: socket.CmdStatus})
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		rows := resp.Status
		if rows == nil {
			rows = []socket.Instance{}
		}
		return enc.Encode(rows)
	}
	return printStatus(app.Stdout, resp.Status, time.Now())
}

// printStatus is the human table of `mhrun status`.
func printStatus(w io.Writer, rows []socket.Instance, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tUPTIME\tRESTARTS\tCPU\tRSS\tPORT\tCONNS\tLAST EXIT / NEXT RUN")
	for _, r := range rows {
		pid, up, cpu, rss := "-", "-", "-", "-"
		if r.PID > 0 {
			pid = strconv.Itoa(r.PID)
			up = formatUptime(now.Sub(r.Started))
			cpu = fmt.Sprintf("%.1f%%", r.CPU)
			rss = policy.FormatBytes(r.RSS)
		}
		var last []string
		if r.LastExit != "" {
			last = append(last, r.LastExit)
		}
		if r.Reason != "" {
			last = append(last, r.Reason)
		}
		if !r.Next.IsZero() {
			last = append(last, "next "+r.Next.Format("2006-01-02 15:04:05"))
		}
		conns := "-"
		if r.Conns > 0 || r.Served > 0 {
			conns = fmt.Sprintf("%d open, %d served", r.Conns, r.Served)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", r.Name, r.State, pid, up, r.Restarts, cpu, rss, r.Port, conns, strings.Join(last, "; "))
	}
	return tw.Flush()
}

func formatUptime(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
