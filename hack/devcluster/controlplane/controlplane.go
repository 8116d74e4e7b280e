// Package controlplane runs the dev cluster's real Kubernetes control
// plane: etcd and kube-apiserver (started by controller-runtime's envtest,
// with the CRDs installed), and kube-controller-manager and kube-scheduler
// as child processes of this one, all on loopback.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pacer-dev/pacer/hack/devcluster/proc"
)

// Options configure the control plane.
type Options struct {
	// Dir is the working folder: etcd data, certificates, kubeconfigs, logs.
	Dir string
	// AssetsDir holds etcd, kube-apiserver, kube-controller-manager and
	// kube-scheduler (hack/envtest-assets.sh prints it).
	AssetsDir string
	// CRDDirs are installed once the API server is up.
	CRDDirs []string
	// Log receives progress lines.
	Log io.Writer
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	env  *envtest.Environment
	opts Options
	// Config is an admin (system:masters) client config.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig string

	certDir  string
	children []*child
}

type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler.
// On error everything started so far is stopped.
func Start(ctx context.Context, o Options) (cp *ControlPlane, err error) {
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(o.AssetsDir, name)); err != nil {
			return nil, fmt.Errorf("%s not found in %s (run hack/envtest-assets.sh etcd kube-apiserver kube-controller-manager kube-scheduler): %w", name, o.AssetsDir, err)
		}
	}
	apiLog, err := os.Create(filepath.Join(o.Dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	etcdLog, err := os.Create(filepath.Join(o.Dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(o.Dir, "apiserver")
	dataDir := filepath.Join(o.Dir, "etcd")
	for _, d := range []string{certDir, dataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    o.AssetsDir,
		CRDDirectoryPaths:        o.CRDDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{CertDir: certDir, Out: apiLog, Err: apiLog},
			Etcd:      &envtest.Etcd{DataDir: dataDir, Out: etcdLog, Err: etcdLog},
		},
	}
	// Events and node leases are worth keeping a while for kubectl describe.
	apiArgs := env.ControlPlane.GetAPIServer().Configure()
	apiArgs.Set("event-ttl", "30m")
	// The aggregation layer, for metrics-server's metrics.k8s.io.
	fp, err := newFrontProxy(filepath.Join(o.Dir, "front-proxy"))
	if err != nil {
		return nil, fmt.Errorf("front-proxy certificates: %w", err)
	}
	for k, v := range aggregationFlags(fp) {
		apiArgs.Set(k, v)
	}

	fmt.Fprintln(o.Log, "starting etcd and kube-apiserver")
	if _, err := env.Start(); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start etcd and kube-apiserver: %w", err)
	}
	cp = &ControlPlane{env: env, opts: o, certDir: certDir}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()

	admin, err := env.AddUser(envtest.User{Name: "pacer-dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	cp.Config = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	caFile := filepath.Join(o.Dir, "ca.crt")
	if err := os.WriteFile(caFile, cp.Config.CAData, 0o644); err != nil {
		return nil, err
	}

	// The controller manager and the scheduler authenticate with client
	// certificates as the users Kubernetes binds their roles to.
	kcmConfig, err := cp.UserKubeconfig("kube-controller-manager", envtest.User{Name: "system:kube-controller-manager"})
	if err != nil {
		return nil, err
	}
	schedConfig, err := cp.UserKubeconfig("kube-scheduler", envtest.User{Name: "system:kube-scheduler"})
	if err != nil {
		return nil, err
	}

	fmt.Fprintln(o.Log, "starting kube-controller-manager")
	if err := cp.startChild(ctx, "kube-controller-manager",
		"--kubeconfig="+kcmConfig,
		"--authentication-kubeconfig="+kcmConfig,
		"--authorization-kubeconfig="+kcmConfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		// Every default controller but node IPAM (the node agent gives
		// pods loopback addresses, not addresses from a pod CIDR) and the
		// endpoints and endpointslice controllers: the API server rejects
		// loopback addresses in their objects. Package endpoints stands in.
		"--controllers=*,-node-ipam-controller,-endpoints-controller,-endpointslice-controller",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(certDir, "sa-signer.key"),
		"--root-ca-file="+caFile,
		// Pods of a deleted ReplicaSet are collected at once.
		"--concurrent-gc-syncs=5",
		// The HPA controller (in "*") reads metrics.k8s.io when
		// metrics-server runs; it syncs at its default pace, said here.
		"--horizontal-pod-autoscaler-sync-period=15s",
		"--v=1",
	); err != nil {
		return nil, err
	}
	fmt.Fprintln(o.Log, "starting kube-scheduler")
	if err := cp.startChild(ctx, "kube-scheduler",
		"--kubeconfig="+schedConfig,
		"--authentication-kubeconfig="+schedConfig,
		"--authorization-kubeconfig="+schedConfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		"--v=1",
	); err != nil {
		return nil, err
	}
	return cp, nil
}

// UserKubeconfig writes Dir/NAME.kubeconfig for user u, who authenticates
// with a client certificate, and returns its path.
func (cp *ControlPlane) UserKubeconfig(name string, u envtest.User) (string, error) {
	user, err := cp.env.AddUser(u, nil)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", u.Name, err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(cp.opts.Dir, name+".kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

func (cp *ControlPlane) startChild(ctx context.Context, name string, args ...string) error {
	logFile, err := os.Create(filepath.Join(cp.opts.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(cp.opts.AssetsDir, name), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := proc.Start(cmd); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(cp.opts.Log, "%s exited: %v (see %s)\n", name, err, logFile.Name())
		}
		close(c.done)
	}()
	cp.children = append(cp.children, c)
	return nil
}

// WaitHealthy waits until the API server answers /readyz.
func (cp *ControlPlane) WaitHealthy(ctx context.Context) error {
	rt, err := rest.TransportFor(cp.Config)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		res, err := client.Get(cp.Config.Host + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return ctx.Err()
}

// Stop stops the scheduler and controller manager, then kube-apiserver and etcd.
func (cp *ControlPlane) Stop() {
	for i := len(cp.children) - 1; i >= 0; i-- {
		c := cp.children[i]
		proc.Stop(c.cmd, c.done, 10*time.Second)
	}
	cp.children = nil
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			fmt.Fprintln(cp.opts.Log, "stop etcd and kube-apiserver:", err)
		}
		cp.env = nil
	}
}
