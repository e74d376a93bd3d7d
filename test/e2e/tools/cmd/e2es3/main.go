// Command e2es3 is the object store of the real-node e2e: gofakes3 (memory
// backend, path-style, signatures not verified) with one line per request
// in an audit log — time, method, path, query, status, bytes in, and the
// access key id that signed it — so the e2e can prove that no environment
// ever wrote under another environment's serverName.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

var credRE = regexp.MustCompile(`Credential=([^/,\s]+)/`)

type rec struct {
	http.ResponseWriter
	status int
}

func (r *rec) WriteHeader(c int) { r.status = c; r.ResponseWriter.WriteHeader(c) }

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address")
	audit := flag.String("audit", "s3-audit.tsv", "audit log (TSV)")
	buckets := flag.String("buckets", "backups", "comma-separated buckets to create")
	flag.Parse()
	f, err := os.OpenFile(*audit, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	backend := s3mem.New()
	for _, b := range strings.Split(*buckets, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if err := backend.CreateBucket(b); err != nil {
				log.Fatal(err)
			}
		}
	}
	h := gofakes3.New(backend, gofakes3.WithHostBucket(false), gofakes3.WithAutoBucket(false),
		gofakes3.WithTimeSkewLimit(0), gofakes3.WithLogger(gofakes3.GlobalLog(gofakes3.LogErr))).Server()
	var mu sync.Mutex
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 30 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t0 := time.Now()
			key := "-"
			if m := credRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
				key = m[1]
			} else if c := r.URL.Query().Get("X-Amz-Credential"); c != "" {
				key = strings.SplitN(c, "/", 2)[0]
			}
			rw := &rec{ResponseWriter: w, status: 200}
			h.ServeHTTP(rw, r)
			mu.Lock()
			fmt.Fprintf(f, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", t0.UTC().Format("2006-01-02T15:04:05.000Z"),
				r.Method, r.URL.Path, r.URL.RawQuery, rw.status, r.ContentLength, key)
			mu.Unlock()
		})}
	log.Printf("e2es3 on %s, audit %s, buckets %s", *listen, *audit, *buckets)
	log.Fatal(srv.ListenAndServe())
}
