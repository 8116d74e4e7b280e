package nodeagent

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// A process listening on *:port keeps every pod with that container port
// from getting an address: the pod fails NoAddress at once, and its status,
// its event and the agent's warning name the process in the way.
func TestNoAddressNamesTheProcessInTheWay(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"tcp4", "tcp"} { // 0.0.0.0, and [::] dual-stack
		t.Run(network, func(t *testing.T) {
			l, err := net.Listen(network, ":0")
			if err != nil {
				t.Skipf("no %s: %v", network, err)
			}
			defer l.Close()
			port := l.Addr().(*net.TCPAddr).Port

			indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			var logged strings.Builder
			recorder := record.NewFakeRecorder(10)
			a := &Agent{
				opts: Options{
					Dir: t.TempDir(), Images: map[string]string{"pacer-api": "/bin/true"}, HostIP: "127.0.0.1",
					Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn})),
				},
				recorder: recorder,
				pods:     corelisters.NewPodLister(indexer),
				running:  map[string]*podRuntime{},
				ips:      map[string]bool{},
				ipBase:   10,
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "0123456789"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "api", Image: "pacer-api", Ports: []corev1.ContainerPort{{ContainerPort: int32(port)}},
				}}},
			}
			if err := indexer.Add(pod); err != nil {
				t.Fatal(err)
			}
			if err := a.CreatePod(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			st, err := a.GetPodStatus(context.Background(), "default", "web")
			if err != nil {
				t.Fatal(err)
			}
			who := "pid " + strconv.Itoa(os.Getpid()) + " (" + strings.TrimSpace(string(comm)) + ")"
			if st.Phase != corev1.PodFailed || st.Reason != "NoAddress" || !strings.Contains(st.Message, who) || !strings.Contains(st.Message, "port "+strconv.Itoa(port)) {
				t.Errorf("status: phase %s, reason %q, message %q; want Failed, NoAddress, naming %s and port %d", st.Phase, st.Reason, st.Message, who, port)
			}
			select {
			case ev := <-recorder.Events:
				if !strings.Contains(ev, "Warning NoAddress") || !strings.Contains(ev, who) {
					t.Errorf("event %q; want a NoAddress warning naming %s", ev, who)
				}
			default:
				t.Error("no event")
			}
			if !strings.Contains(logged.String(), who) {
				t.Errorf("the agent's warnings (the dev cluster's output) do not name %s: %q", who, logged.String())
			}
		})
	}
}
