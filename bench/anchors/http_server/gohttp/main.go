// Go net/http anchor for bench/http_server.sh: gohttp PORT THREADS
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strconv"
)

type message struct {
	Message string `json:"message"`
}

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	runtime.GOMAXPROCS(n)
	http.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, World!"))
	})
	http.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(message{"Hello, World!"})
	})
	http.ListenAndServe("127.0.0.1:"+os.Args[1], nil)
}
