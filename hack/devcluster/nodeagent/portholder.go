package nodeagent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// wildcardListeners names the processes listening on port on every
// address (0.0.0.0 or ::), e.g. "pid 1234 (nc) on 0.0.0.0:8080". Such a
// socket keeps every pod from binding the port on its own loopback address.
// It reads /proc/net/tcp{,6} for the listening sockets' inodes, then
// /proc/*/fd for the processes holding them.
func wildcardListeners(port int) []string {
	inodes := map[string]string{} // socket inode → address
	for file, any := range map[string]string{"/proc/net/tcp": "0.0.0.0", "/proc/net/tcp6": "[::]"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			host, hexPort, ok := strings.Cut(fields[1], ":")
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if !ok || err != nil || int(p) != port || strings.Trim(host, "0") != "" {
				continue
			}
			inodes[fields[9]] = fmt.Sprintf("%s:%d", any, port)
		}
		f.Close()
	}
	if len(inodes) == 0 {
		return nil
	}
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			addr, ok := inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]
			if !ok {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			out = append(out, fmt.Sprintf("pid %s (%s) on %s", filepath.Base(dir), strings.TrimSpace(string(comm)), addr))
			break
		}
	}
	if len(out) == 0 {
		// The socket's owner is not visible to us (another user or namespace).
		for _, addr := range inodes {
			out = append(out, "an unknown process on "+addr)
		}
	}
	return out
}
