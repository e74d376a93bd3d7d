// Command gitserver serves the bare repositories in a directory over git's
// smart HTTP protocol on 127.0.0.1, for the demo and local experiments.
//
//	go run ./hack/gitserver -root DIR [-addr 127.0.0.1:0] [-create NAME ...]
//
// It prints the base URL on its first line and serves until killed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/offshoot-dev/offshoot/internal/gitserver"
)

func main() {
	root := flag.String("root", "", "directory of bare repositories (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	create := flag.String("create", "", "comma-separated names of empty bare repositories to create")
	flag.Parse()
	if *root == "" {
		fmt.Fprintln(os.Stderr, "gitserver: -root is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*root, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gitserver:", err)
		os.Exit(1)
	}
	s, err := gitserver.Start(*root, *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitserver:", err)
		os.Exit(1)
	}
	for _, name := range strings.Split(*create, ",") {
		if name == "" {
			continue
		}
		if _, err := s.CreateBare(name); err != nil {
			fmt.Fprintln(os.Stderr, "gitserver:", err)
			os.Exit(1)
		}
	}
	fmt.Println(s.URL)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	_ = s.Close()
}
