// Command e2eapp is the app every environment of the e2e runs (image
// ghcr.io/acme/shop:<sha>): it reads DATABASE_URL (the CloudNativePG
// Cluster's <cluster>-app Secret, key uri) and serves the rows of its table
// over HTTP, so that each environment's app is Healthy for real and answers
// with its own data.
//
//	GET  /             200 "ok" once the database answers (the readiness probe)
//	GET  /rows         {"count":N,"min":a,"max":b,"sum":s}
//	POST /rows?from=a&to=b   inserts ids a..b (a table "rows" is created if missing)
//
// The e2e's node has no DNS server: a host name that does not resolve is
// looked up in the Service environment variables the kubelet gives every
// pod (<SERVICE>_SERVICE_HOST for the Services of the pod's namespace that
// existed when it started), which covers the Cluster's "<cluster>-rw[.<ns>]".
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

type dialer struct{ d net.Dialer }

func (d dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

func (d dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) == nil {
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			svc := strings.ToUpper(strings.ReplaceAll(strings.SplitN(host, ".", 2)[0], "-", "_"))
			if ip := os.Getenv(svc + "_SERVICE_HOST"); ip != "" {
				host = ip
			}
		}
	}
	return d.d.DialContext(ctx, network, net.JoinHostPort(host, port))
}

func main() {
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		log.Fatal("DATABASE_URL is not set")
	}
	base, err := pq.NewConnector(dsn)
	if err != nil {
		log.Fatalf("DATABASE_URL: %v", err)
	}
	base.Dialer(dialer{d: net.Dialer{Timeout: 5 * time.Second}})
	db := sql.OpenDB(base)
	db.SetMaxOpenConns(4)
	addr := ":" + envOr("PORT", "8080")

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			http.Error(w, "database: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/rows", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		switch r.Method {
		case http.MethodPost:
			from, err1 := strconv.Atoi(r.URL.Query().Get("from"))
			to, err2 := strconv.Atoi(r.URL.Query().Get("to"))
			if err1 != nil || err2 != nil || to < from {
				http.Error(w, "want ?from=a&to=b with a <= b", http.StatusBadRequest)
				return
			}
			if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS rows (id integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO rows (id) SELECT generate_series($1::int, $2::int)`, from, to); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fallthrough
		case http.MethodGet:
			var out struct {
				Count    int64  `json:"count"`
				Min      int64  `json:"min"`
				Max      int64  `json:"max"`
				Sum      int64  `json:"sum"`
				Database string `json:"database"`
			}
			err := db.QueryRowContext(ctx, `SELECT count(*), coalesce(min(id),0), coalesce(max(id),0), coalesce(sum(id),0), current_database() FROM rows`).
				Scan(&out.Count, &out.Min, &out.Max, &out.Sum, &out.Database)
			if err != nil {
				if e, ok := err.(*pq.Error); ok && e.Code == "42P01" { // undefined_table: no rows yet
					_ = db.QueryRowContext(ctx, `SELECT current_database()`).Scan(&out.Database)
					err = nil
				}
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(out)
		default:
			http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		}
	})
	log.Printf("e2eapp listening on %s", addr)
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
