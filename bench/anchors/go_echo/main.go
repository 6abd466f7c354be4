// TCP echo anchor for weft's bench/net_echo: the same protocol and output.
//
//	goecho server PORT
//	goecho client HOST PORT CONNS MSG_BYTES SECONDS
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func server(port string) {
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		panic(err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			buf := make([]byte, 65536)
			for {
				n, err := c.Read(buf)
				if err != nil {
					c.Close()
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					c.Close()
					return
				}
			}
		}(c)
	}
}

func client(host, port string, conns, msg, seconds int) {
	var trips int64
	var wg sync.WaitGroup
	t0 := time.Now()
	end := t0.Add(time.Duration(seconds) * time.Second)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", host+":"+port)
			if err != nil {
				panic(err)
			}
			out, in := make([]byte, msg), make([]byte, msg)
			var n int64
			for time.Now().Before(end) {
				if _, err := c.Write(out); err != nil {
					break
				}
				if _, err := io.ReadFull(c, in); err != nil {
					break
				}
				n++
			}
			atomic.AddInt64(&trips, n)
			c.Close()
		}()
	}
	wg.Wait()
	dt := time.Since(t0).Seconds()
	fmt.Printf("round_trips_per_sec %.0f\n", float64(trips)/dt)
	fmt.Printf("mb_per_sec %.1f\n", float64(trips)*float64(msg)/dt/1e6)
}

func main() {
	a := os.Args
	if len(a) == 3 && a[1] == "server" {
		server(a[2])
		return
	}
	if len(a) == 7 && a[1] == "client" {
		conns, _ := strconv.Atoi(a[4])
		msg, _ := strconv.Atoi(a[5])
		sec, _ := strconv.Atoi(a[6])
		client(a[2], a[3], conns, msg, sec)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: goecho server PORT | client HOST PORT CONNS MSG SECONDS")
	os.Exit(2)
}
