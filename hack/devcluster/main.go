// Command devcluster runs a Kubernetes cluster on this machine with no
// container runtime: real etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler, plus a node agent that runs each Pod as local processes on
// its own loopback address, and (optionally) Pacer's manager. See
// docs/devcluster.md.
//
//	go run ./hack/devcluster --image pacer-api=bin/pacer-api --manager bin/manager
//
// It prints the kubeconfig path, then "dev cluster ready", and runs until
// SIGINT or SIGTERM; then it stops everything and removes its folder.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
	"github.com/pacer-dev/pacer/hack/devcluster/controlplane"
	"github.com/pacer-dev/pacer/hack/devcluster/endpoints"
	"github.com/pacer-dev/pacer/hack/devcluster/metricsserver"
	"github.com/pacer-dev/pacer/hack/devcluster/nodeagent"
	"github.com/pacer-dev/pacer/hack/devcluster/proc"
)

type imageFlag map[string]string

func (f imageFlag) String() string { return fmt.Sprint(map[string]string(f)) }
func (f imageFlag) Set(s string) error {
	name, path, ok := strings.Cut(s, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want NAME=PATH, got %q", s)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("image %s: %w", name, err)
	}
	f[name] = abs
	return nil
}

func main() {
	proc.RunReaperIfAsked()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

func run() error {
	defaults := nodeagent.DefaultOptions()
	images := imageFlag{}
	var (
		assets      = flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder with etcd, kube-apiserver, kube-controller-manager, kube-scheduler (default: built by hack/envtest-assets.sh)")
		crds        = flag.String("crds", "config/crd/bases", "CRD folder to install")
		manager     = flag.String("manager", "", "manager binary to run against the cluster (e.g. bin/manager); empty: none")
		managerArgs = flag.String("manager-args", "", "extra manager flags, space separated")
		nodeName    = flag.String("node-name", defaults.NodeName, "the Node's name")
		cpu         = flag.String("node-cpu", defaults.CPU.String(), "the Node's CPU capacity")
		mem         = flag.String("node-memory", defaults.Memory.String(), "the Node's memory capacity")
		linkConfig  = flag.String("kubeconfig-link", "", "also make this path a symlink to the kubeconfig (removed on exit)")
		verbose     = flag.Bool("v", false, "log the node agent's pod events to stderr")
		msBinary    = flag.String("metrics-server", "", `metrics-server binary serving metrics.k8s.io (default: <assets>/metrics-server, built by "hack/envtest-assets.sh metrics-server"); "off": none`)
	)
	flag.Var(images, "image", "NAME=PATH: run image NAME (a full reference, or its last path element without tag) as the local binary PATH; repeatable")
	flag.Parse()
	if len(images) == 0 {
		return errors.New("no --image given (e.g. --image pacer-api=bin/pacer-api)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	for _, d := range proc.CleanStale() {
		fmt.Fprintln(os.Stderr, "removed a stale dev cluster folder and its processes:", d)
	}
	dir, err := proc.MakeDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := proc.StartReaper(dir); err != nil {
		return err
	}

	// Pod limits: the pods' cgroups are named after the cluster's folder
	// (so the reaper finds them).
	cg, cgErr := cgroups.Detect(filepath.Base(dir))
	if cgErr != nil {
		fmt.Fprintf(os.Stderr, "WARNING: pod limits are NOT enforced (%v); pods run without CPU and memory limits, as processes sharing the machine\n", cgErr)
		fmt.Printf("pod limits: not enforced: %v\n", cgErr)
	} else {
		defer cg.Remove()
		fmt.Fprintf(os.Stderr, "pod limits enforced: each container in its own cgroup (%s)\n", cg)
		fmt.Printf("pod limits: enforced (%s)\n", cg)
	}

	if *assets == "" {
		cmd := exec.Command("hack/envtest-assets.sh", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
		cmd.Stderr = os.Stderr // a first build takes minutes: show its progress
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("hack/envtest-assets.sh: %w", err)
		}
		*assets = strings.TrimSpace(string(out))
		// Best effort: without it the cluster runs, without resource metrics.
		cmd = exec.Command("hack/envtest-assets.sh", "metrics-server")
		cmd.Stderr = os.Stderr
		_ = cmd.Run()
	}
	if *msBinary == "" {
		*msBinary = filepath.Join(*assets, "metrics-server")
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	agentLog, err := os.Create(filepath.Join(dir, "node-agent.log"))
	if err != nil {
		return err
	}
	defer agentLog.Close()
	log := slog.New(teeHandler{
		slog.NewTextHandler(agentLog, &slog.HandlerOptions{Level: slog.LevelInfo}),
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}),
	})

	startCtx, cancelStart := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelStart()
	cp, err := controlplane.Start(startCtx, controlplane.Options{Dir: dir, AssetsDir: *assets, CRDDirs: []string{*crds}, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer cp.Stop()
	fmt.Println("kubeconfig:", cp.Kubeconfig)
	if *linkConfig != "" {
		_ = os.Remove(*linkConfig)
		if err := os.Symlink(cp.Kubeconfig, *linkConfig); err != nil {
			return err
		}
		defer os.Remove(*linkConfig)
	}

	// The dev cluster's CA signs the kubelet API's and metrics-server's
	// serving certificates, so metrics-server and the aggregator verify them.
	pkiDir := filepath.Join(dir, "pki")
	devCA, kubeletAPI, err := kubeletPKI(pkiDir, *nodeName, defaults.HostIP, cp.ClientCAFile())
	if err != nil {
		return err
	}

	o := defaults
	o.NodeName, o.Dir, o.Images, o.Log, o.Cgroups = *nodeName, filepath.Join(dir, "pods"), images, log, cg
	o.KubeletAPI = kubeletAPI
	if o.CPU, err = resource.ParseQuantity(*cpu); err != nil {
		return fmt.Errorf("--node-cpu: %w", err)
	}
	if o.Memory, err = resource.ParseQuantity(*mem); err != nil {
		return fmt.Errorf("--node-memory: %w", err)
	}
	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentReady, agentDone := make(chan struct{}), make(chan error, 1)
	go func() { agentDone <- nodeagent.Run(agentCtx, cp.Config, o, agentReady) }()
	stopAgentAndWait := func() {
		stopAgent()
		select {
		case err := <-agentDone:
			if err != nil {
				log.Warn("node agent stopped", "err", err)
			}
		case <-time.After(30 * time.Second):
		}
	}
	select {
	case <-agentReady:
	case err := <-agentDone:
		return fmt.Errorf("node agent: %w", err)
	case <-ctx.Done():
		stopAgentAndWait()
		return nil
	}
	fmt.Fprintln(os.Stderr, "node agent running node", o.NodeName)
	// The API server warns that FQDN EndpointSlices are deprecated; they
	// are what stands in for loopback ones here (see package endpoints).
	epConfig := rest.CopyConfig(cp.Config)
	epConfig.WarningHandler = rest.NoWarnings{}
	clientset, err := kubernetes.NewForConfig(epConfig)
	if err != nil {
		stopAgentAndWait()
		return err
	}
	go func() { _ = endpoints.Run(agentCtx, clientset, log) }()

	ms := startMetricsServer(ctx, cp, metricsserver.Options{
		Binary: *msBinary, Dir: filepath.Join(dir, "metrics-server"),
		CA: devCA, KubeletCAFile: filepath.Join(pkiDir, "dev-ca.crt"),
	}, cg != nil, *msBinary == "off")
	if ms != nil {
		defer ms.Stop()
	}

	var mgr *exec.Cmd
	mgrDone := make(chan struct{})
	if *manager != "" {
		logFile, err := os.Create(filepath.Join(dir, "manager.log"))
		if err != nil {
			stopAgentAndWait()
			return err
		}
		defer logFile.Close()
		args := []string{"--kubeconfig=" + cp.Kubeconfig, "--health-probe-bind-address=127.0.0.1:0", "--metrics-bind-address=0"}
		args = append(args, strings.Fields(*managerArgs)...)
		mgr = exec.Command(*manager, args...)
		mgr.Stdout, mgr.Stderr = logFile, logFile
		if err := proc.Start(mgr); err != nil {
			stopAgentAndWait()
			return fmt.Errorf("start manager: %w", err)
		}
		go func() {
			err := mgr.Wait()
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "manager exited: %v (see %s)\n", err, logFile.Name())
			}
			close(mgrDone)
		}()
		fmt.Fprintln(os.Stderr, "manager running, log:", logFile.Name())
	}

	fmt.Fprintf(os.Stderr, "logs: %s\ntry:  kubectl --kubeconfig %s get tsvc,deploy,pods -o wide\n", dir, cp.Kubeconfig)
	fmt.Println("dev cluster ready")

	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping the dev cluster")
	if mgr != nil {
		proc.Stop(mgr, mgrDone, 10*time.Second)
	}
	if ms != nil {
		ms.Stop()
	}
	stopAgentAndWait()
	cp.Stop()
	return nil
}

// teeHandler sends records to several handlers.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			_ = h.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (t teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
