// Package snmptest starts net-snmp peers for tests: an snmpd agent on a
// free loopback port, and helpers to run snmptrap/snmpinform.
package snmptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// V3 credentials the agent is configured with.
const (
	User     = "ops"
	AuthPass = "authpass1"
	PrivPass = "privpass1"
)

// Need returns the path of a net-snmp binary, failing under CI=true when it
// is missing and skipping otherwise.
func Need(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (CI=true: a missing peer fails); install with: make deps", name)
	}
	t.Skipf("%s not installed; install with: make deps (under CI this fails)", name)
	return ""
}

// FreeUDPPort returns a loopback UDP port nobody listens on right now.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Agent starts snmpd on a free loopback port with community "public" and
// the v3 user User (SHA/AES). It is stopped when the test ends.
func Agent(t testing.TB) (port int) {
	t.Helper()
	bin := Need(t, "snmpd")
	dir := t.TempDir()
	port = FreeUDPPort(t)
	conf := fmt.Sprintf(`agentaddress udp:127.0.0.1:%d
rocommunity public 127.0.0.1
createUser %s SHA %s AES %s
rouser %s priv
`, port, User, AuthPass, PrivPass, User)
	confPath := filepath.Join(dir, "snmpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", "-C", "-c", confPath, "-M", filepath.Join(dir, "nomibs"), "-m", "",
		"-Lf", filepath.Join(dir, "snmpd.log"), "-p", filepath.Join(dir, "snmpd.pid"))
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+filepath.Join(dir, "persist"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start snmpd: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	get := Need(t, "snmpget")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(get, "-v2c", "-c", "public", "-m", "", "-t", "0.2", "-r", "0",
			fmt.Sprintf("127.0.0.1:%d", port), "1.3.6.1.2.1.1.3.0").CombinedOutput()
		if err == nil {
			return port
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "snmpd.log"))
			t.Fatalf("snmpd did not answer on port %d: %v: %s\nlog:\n%s", port, err, out, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Run runs a net-snmp command line tool and returns its combined output,
// failing the test when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	bin := Need(t, name)
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// MIBDir returns the directory of standard MIB files installed by
// `make deps` (the npm package net-snmp under interop/mibs), failing under
// CI=true when it is missing and skipping otherwise.
func MIBDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "interop", "mibs", "package.json")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no interop/mibs above the test's directory")
		}
		dir = parent
	}
	mibs := filepath.Join(dir, "interop", "mibs", "node_modules", "net-snmp", "lib", "mibs")
	if _, err := os.Stat(filepath.Join(mibs, "IF-MIB.mib")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MIB files missing (CI=true: a missing peer fails): %v; install with: make deps (cd interop/mibs && npm ci)", err)
		}
		t.Skipf("MIB files missing; install with: make deps (cd interop/mibs && npm ci) (under CI this fails)")
	}
	return mibs
}

// WaitUDPBound waits until a socket is bound to the IPv4 loopback UDP
// address addr (it shows in /proc/net/udp): a datagram sent before that is
// refused by the kernel and lost.
func WaitUDPBound(t testing.TB, addr string) {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	ip := ua.IP.To4()
	if ip == nil {
		t.Fatalf("WaitUDPBound(%s): want an IPv4 address", addr)
	}
	// The kernel prints the address as a little-endian hex word.
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ua.Port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		table, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(table), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[1] == local {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing bound %s within 10s", addr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
