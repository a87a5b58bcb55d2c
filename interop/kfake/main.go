// Command kfake runs franz-go's in-memory Kafka-protocol broker as its own
// process, for Recon's tests: the product's Kafka client talks to it over
// TCP exactly as to a real cluster. It prints "listening ADDR,ADDR…" on
// stdout once the brokers accept connections and runs until killed.
package main

import (
	"flag"
	"fmt"
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
	flag.Parse()

	opts := []kfake.Opt{
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
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println("listening", strings.Join(c.ListenAddrs(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
