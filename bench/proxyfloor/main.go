// Command proxyfloor is the cluster benchmark's proxy floor: the least a
// TCP balancer in user space can do. It accepts connections on -listen,
// dials the -backend addresses round robin, one per connection, and
// copies bytes both ways with io.Copy; when one direction reaches its end
// it closes the write side of the other connection (CloseWrite), and once
// the backend's side has ended it closes both. Nothing else: no health
// checks, no retries, no draining, no limits, no logging per connection.
//
// Usage: proxyfloor -listen ADDR -backend ADDR [-backend ADDR]...
//
// On Linux, io.Copy between two *net.TCPConn splices (TCPConn.WriteTo
// and ReadFrom move the bytes through a pipe with splice(2)); that is
// what a plain io.Copy costs, and what this floor measures. It runs until
// it is killed.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
)

func main() {
	var backends []string
	fs := flag.NewFlagSet("proxyfloor", flag.ExitOnError)
	listen := fs.String("listen", "", "the address to accept on, e.g. 127.0.0.1:8080")
	fs.Func("backend", "a backend's address (repeat it for each backend; they are dialled round robin)", func(s string) error {
		backends = append(backends, s)
		return nil
	})
	fs.Parse(os.Args[1:])
	if *listen == "" || len(backends) == 0 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: proxyfloor -listen ADDR -backend ADDR [-backend ADDR]...")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "proxyfloor: %v\n", err)
		os.Exit(1)
	}
	var next atomic.Uint64
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "proxyfloor: %v\n", err)
			os.Exit(1)
		}
		backend := backends[(next.Add(1)-1)%uint64(len(backends))]
		go proxy(c, backend)
	}
}

// proxy copies between client c and a new connection to backend.
func proxy(c net.Conn, backend string) {
	defer c.Close()
	s, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		io.Copy(s, c)
		s.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, s)
}
