package runner

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The "serve" helper listens on 127.0.0.1:$PORT after printing "booting"
// and sleeping MHRUN_TEST_BOOT (so that a ready check has to wait: 100ms
// is past a probe's first two tries), and answers /healthz with 200 and
// the instance's $PS.
func init() {
	if os.Getenv("MHRUN_TEST_HELPER") != "serve" {
		return
	}
	fmt.Println("booting")
	if d, err := time.ParseDuration(os.Getenv("MHRUN_TEST_BOOT")); err == nil {
		time.Sleep(d) // the helper simulates a slow start; the test waits on the ready event
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("listening")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		fmt.Fprintln(w, os.Getenv("PS"))
	}))
	os.Exit(0)
}

// Each ready form with a real child: the instance is starting until the
// check passes, then running, and only then do its dependents start.
func TestReadyForms(t *testing.T) {
	bin := os.Args[0]
	serve := fmt.Sprintf("MHRUN_TEST_HELPER=serve MHRUN_TEST_BOOT=100ms exec %s", bin)
	tests := []struct {
		name, policy, cmd string
	}{
		{"tcp", "ready=tcp", serve},
		{"http", "ready=http:/healthz", serve},
		{"log", `ready="log:listen\w+"`, serve},
		{"notify", "ready=notify", fmt.Sprintf("MHRUN_TEST_HELPER=notify exec %s; exec sleep 1000", bin)},
		{"exec", `ready="exec:test -s flag"`, "echo x > flag; exec sleep 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := runFormation(t, map[string]string{
				"Procfile":        "app: " + tt.cmd + "\nafter: echo dependent started; exec sleep 1000\n",
				"Procfile.policy": "app: " + tt.policy + " ready-timeout=10s\nafter: after=app\n",
			})
			r.out.waitFor(t, "dependent", func(o string) bool { return strings.Contains(o, "dependent started") })
			o := r.out.String()
			ready := strings.Index(o, "app.1 is ready ("+strings.Trim(strings.TrimPrefix(tt.policy, "ready="), `"`)+")")
			if ready < 0 || ready > strings.Index(o, "dependent started") {
				t.Errorf("no ready event before the dependent started:\n%s", o)
			}
			if strings.Contains(tt.cmd, "serve") && strings.Index(o, "app.1 | listening") > strings.Index(o, "dependent started") {
				t.Errorf("dependent started before the server listened:\n%s", o)
			}
		})
	}
}

// The "goodbye" helper prints "up", and on SIGTERM "goodbye" before it exits 0.
func init() {
	if os.Getenv("MHRUN_TEST_HELPER") != "goodbye" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	fmt.Println("up")
	<-sig
	fmt.Println("goodbye")
	os.Exit(0)
}

// Regression: dash does not exec the last command of sh -c, so the shell
// was the session leader; on SIGTERM it died at once, the pty hung up and
// the program's goodbye was lost. A simple command is now exec'd.
func TestStopKeepsProgramsLastWords(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile": fmt.Sprintf("bye: env MHRUN_TEST_HELPER=goodbye %s\n", os.Args[0]),
	})
	r.out.waitFor(t, "up", func(o string) bool { return strings.Contains(o, "bye.1 | up") })
	r.cancel()
	r.wait(t, 10*time.Second)
	o := r.out.String()
	if !strings.Contains(o, "bye.1 | goodbye\n") || !strings.Contains(o, "bye.1 stopped (exited with code 0)") {
		t.Errorf("last words lost:\n%s", o)
	}
}
