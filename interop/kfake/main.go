// Command kfake runs franz-go's in-memory Kafka-protocol broker as its own
// process, for Recon's tests: the product's Kafka client talks to it over
// TCP exactly as to a real cluster. It prints "listening ADDR,ADDR…" on
// stdout once the brokers accept connections and runs until killed. With
// -advertise HOST:PORT (a test's proxy) it tells clients that address and
// prints "listening HOST:PORT backend ADDR", ADDR being where it listens.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	brokers := flag.Int("brokers", 1, "number of brokers")
	partitions := flag.Int("partitions", 4, "default partitions of auto-created topics")
	port := flag.Int("port", 0, "port of the first broker (0: random)")
	topics := flag.String("topics", "", "comma-separated topics to create at start")
	segmentBytes := flag.Int("segment-bytes", 8<<20, "size of the in-memory log segments of each partition")
	advertise := flag.String("advertise", "", "HOST:PORT the broker gives clients as its address instead of its own (one broker only): a proxy in front of it")
	flag.Parse()
	if *advertise != "" && *brokers != 1 {
		fmt.Fprintln(os.Stderr, "kfake: -advertise needs -brokers 1")
		os.Exit(2)
	}

	opts := []kfake.Opt{
		// kfake keeps each segment in one slice that grows by doubling;
		// with its 100 MiB default the copies and fresh pages made the
		// broker's CPU per byte vary twofold between identical benchmark
		// runs (docs/benchmarks.md#kafka), smaller segments reuse memory.
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": fmt.Sprint(*segmentBytes)}),
		kfake.NumBrokers(*brokers),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *port != 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	var backend net.Addr
	if *advertise != "" {
		adv, err := net.ResolveTCPAddr("tcp", *advertise)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kfake: -advertise:", err)
			os.Exit(2)
		}
		opts = append(opts, kfake.ListenFn(func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			backend = ln.Addr()
			return advertised{Listener: ln, addr: adv}, nil
		}))
	}
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	defer c.Close()
	if backend != nil {
		fmt.Println("listening", strings.Join(c.ListenAddrs(), ","), "backend", backend)
	} else {
		fmt.Println("listening", strings.Join(c.ListenAddrs(), ","))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// advertised is a listener that reports another address as its own: kfake
// gives clients its listener's address, so they come back through the
// proxy listening there.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }
