// Package localenv runs the operator's whole job on 127.0.0.1: a real
// kube-apiserver and etcd, a fake meetergo, an echo target Service, and the
// operator binary (the one the image ships) as a separate process. The demo
// (`make demo`) tells its story with it; the end-to-end tests assert on it.
//
// The API server refuses loopback addresses in EndpointSlices, so the echo
// Service's slice carries a documentation address that is never routed
// (192.0.2.10) with the echo server's real port, and the operator reaches it
// through a small proxy on 127.0.0.1 that maps 192.0.2.x to 127.0.0.1 — set
// as the operator's HTTP_PROXY, the same knob a cluster with an egress proxy
// uses. No connection ever leaves the loopback interface.
package localenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/meetergo-operator/meetergo-operator/internal/echo"
	"github.com/meetergo-operator/meetergo-operator/internal/loopbackproxy"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

// The company and credential of the local meetergo (fake, like everything here).
const (
	CompanyID  = "c0ffee00-0000-4000-8000-00000000de00"
	AdminID    = "a11ce000-0000-4000-8000-00000000de01"
	Token      = "rgo-demo-personal-access-token-0123456789abcdef"
	SigningKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// TokenKey is the operator's receiver token key here.
	TokenKey = "local-token-key-0123456789abcdef0123456789"
	// EchoAddress is the never-routed address the echo Service's
	// EndpointSlice names; the proxy maps it to 127.0.0.1.
	EchoAddress = "192.0.2.10"
)

// Options of Start.
type Options struct {
	// Manager is the operator binary.
	Manager string
	// Namespace gets the echo Service; created if missing.
	Namespace string
	// EchoOut, if set, gets a line per delivery the echo target receives.
	EchoOut *os.File
	// ExtraArgs are appended to the operator's command line.
	ExtraArgs []string
	// LeaderElection runs the operator with --leader-elect and --namespace
	// Namespace (where its Lease lives), its user bound also to the leader
	// election Role of config/rbac in that namespace. ExtraArgs may set the
	// --leader-elect-* durations.
	LeaderElection bool
	// RestartableAPIServer lets StopAPIServer and StartAPIServer take the
	// API server away and bring it back (see testenv.Options).
	RestartableAPIServer bool
	// OperatorEnv is appended to the operator process's environment
	// (GOMAXPROCS=2, GOGC=200, …).
	OperatorEnv []string
	// Proxy, if set, makes the handler of the operator's HTTP_PROXY from
	// the loopback proxy (192.0.2.x to 127.0.0.1): it may answer some
	// requests itself and pass the rest on to loopback.
	Proxy func(loopback http.Handler) http.Handler
}

// Env is a running local environment.
type Env struct {
	K8s      *testenv.Env
	Meetergo *fake.Server
	// MeetergoURL is the fake meetergo's API base URL.
	MeetergoURL string
	Echo        *echo.Target
	// ReceiverURL is the operator's receiver, as registered at meetergo.
	ReceiverURL string
	// OperatorLog is the operator process's log file.
	OperatorLog string
	// MetricsURL serves the operator's Prometheus metrics (plain http here).
	MetricsURL string
	// ReadyzURL is the operator's readiness probe.
	ReadyzURL string

	opts     Options
	workDir  string
	receiver string
	probe    string
	metrics  string
	// operatorKubeconfig reaches the API server as the operator's user,
	// bound to the generated ClusterRole only.
	operatorKubeconfig string
	proxyURL           string
	operator           *exec.Cmd
	exited             chan struct{}
	replicas           []*Replica
	cleanup            []func()
}

// Start brings up everything but the operator; StartOperator starts it.
func Start(opts Options) (_ *Env, err error) {
	e := &Env{opts: opts}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	if e.workDir, err = os.MkdirTemp("", "meetergo-local-"); err != nil {
		return nil, err
	}
	if e.K8s, err = testenv.StartWith(testenv.Options{RestartableAPIServer: opts.RestartableAPIServer}); err != nil {
		return nil, err
	}
	e.cleanup = append(e.cleanup, func() { _ = e.K8s.Stop() })

	e.Meetergo, err = fake.New(fake.Options{Seed: fake.Seed{
		Companies:   []fake.Company{{ID: CompanyID, Name: "Demo GmbH (fake)"}},
		Users:       []fake.User{{ID: AdminID, CompanyID: CompanyID, Email: "admin@demo.example.test", IsAdmin: true}},
		Credentials: []fake.Credential{{Token: Token, UserID: AdminID}},
	}})
	if err != nil {
		return nil, err
	}
	mg := httptest.NewServer(e.Meetergo)
	e.MeetergoURL = mg.URL
	e.cleanup = append(e.cleanup, func() { e.Meetergo.Close(); mg.Close() })

	e.Echo = &echo.Target{Secret: SigningKey, Out: opts.EchoOut}
	echoSrv := httptest.NewServer(e.Echo)
	e.cleanup = append(e.cleanup, echoSrv.Close)

	lp, err := loopbackproxy.New("192.0.2.0/24")
	if err != nil {
		return nil, err
	}
	var ph http.Handler = lp
	if opts.Proxy != nil {
		ph = opts.Proxy(lp)
	}
	proxy := httptest.NewServer(ph)
	e.proxyURL = proxy.URL
	e.cleanup = append(e.cleanup, proxy.Close)

	if e.receiver, err = FreeAddr(); err != nil {
		return nil, err
	}
	if e.probe, err = FreeAddr(); err != nil {
		return nil, err
	}
	if e.metrics, err = FreeAddr(); err != nil {
		return nil, err
	}
	e.MetricsURL = "http://" + e.metrics + "/metrics"
	e.ReadyzURL = "http://" + e.probe + "/readyz"
	e.ReceiverURL = "http://" + e.receiver

	if err := e.echoService(echoSrv.Listener.Addr().(*net.TCPAddr).Port); err != nil {
		return nil, err
	}
	if e.operatorKubeconfig, err = e.operatorUser(); err != nil {
		return nil, err
	}
	return e, nil
}

// operatorUser makes the user the operator runs as, with exactly the
// ClusterRole generated from the code's RBAC markers (config/rbac/role.yaml)
// and nothing else, and returns its kubeconfig: the whole job must work
// with what the markers ask for.
func (e *Env) operatorUser() (string, error) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		return "", err
	}
	var role *rbacv1.ClusterRole
	for _, doc := range strings.Split(string(raw), "\n---") {
		cr := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal([]byte(doc), cr); err == nil && cr.Kind == "ClusterRole" {
			role = cr
		}
	}
	if role == nil {
		return "", errors.New("no ClusterRole in config/rbac/role.yaml")
	}
	const user = "meetergo-operator"
	role.ObjectMeta = metav1.ObjectMeta{Name: "meetergo-operator-manager"}
	ctx := context.Background()
	if err := e.K8s.Client.Create(ctx, role); err != nil {
		return "", err
	}
	if err := e.K8s.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "meetergo-operator-manager"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}); err != nil {
		return "", err
	}
	if e.opts.LeaderElection {
		if err := e.leaderElectionRole(user); err != nil {
			return "", err
		}
	}
	u, err := e.K8s.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		return "", err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.workDir, "operator.kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// leaderElectionRole binds the hand-written leader election Role
// (config/rbac/leader_election_role.yaml) to user in the operator's
// namespace, as the chart and kustomize do for its ServiceAccount.
func (e *Env) leaderElectionRole(user string) error {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "leader_election_role.yaml"))
	if err != nil {
		return err
	}
	role := &rbacv1.Role{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		return err
	}
	if role.Kind != "Role" || len(role.Rules) == 0 {
		return errors.New("no Role in config/rbac/leader_election_role.yaml")
	}
	role.ObjectMeta = metav1.ObjectMeta{Namespace: e.opts.Namespace, Name: "meetergo-operator-leader-election"}
	ctx := context.Background()
	if err := e.K8s.Client.Create(ctx, role); err != nil {
		return err
	}
	return e.K8s.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.opts.Namespace, Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	})
}

// echoService makes the selectorless Service "echo" (port "http": 80) with
// an EndpointSlice naming the never-routed address and the echo's port.
func (e *Env) echoService(port int) error {
	ctx := context.Background()
	c := e.K8s.Client
	ns := e.opts.Namespace
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "meetergo-signing"},
		StringData: map[string]string{"secret": SigningKey}}); err != nil {
		return err
	}
	return e.Service(ctx, "echo", EchoAddress, port)
}

// Service makes the selectorless Service name (port "http": 80) in
// Options.Namespace whose EndpointSlice names addr (a never-routed
// 192.0.2.x, which the proxy maps to 127.0.0.1) with port.
func (e *Env) Service(ctx context.Context, name, addr string, port int) error {
	c, ns := e.K8s.Client, e.opts.Namespace
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP,
		}}},
	}
	if err := c.Create(ctx, svc); err != nil {
		return err
	}
	return c.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	})
}

// StartOperator starts the operator binary, pointed at the fake meetergo and
// the control plane, with plain-http endpoints allowed for local use. Its
// data directory survives restarts.
func (e *Env) StartOperator() error { return e.StartOperatorBinary(e.opts.Manager) }

// StartOperatorBinary is StartOperator with another build of the operator
// than Options.Manager (one with symbols, say), on the same data directory.
func (e *Env) StartOperatorBinary(manager string) error {
	if e.operator != nil {
		return errors.New("the operator is running")
	}
	e.OperatorLog = filepath.Join(e.workDir, "operator.log")
	cmd, exited, err := e.spawn(manager, operatorAddrs{receiver: e.receiver, probe: e.probe, metrics: e.metrics}, e.DataDir(), e.OperatorLog)
	if err != nil {
		return err
	}
	e.operator, e.exited = cmd, exited
	return e.waitReady(30 * time.Second)
}

// operatorAddrs are the addresses one operator process listens on.
type operatorAddrs struct{ receiver, probe, metrics string }

// spawn starts the operator binary with its log appended to logPath and
// returns the process and a channel closed once it has exited. Every
// process registers Env.ReceiverURL at meetergo (in a cluster, the URL of
// the Service in front of every replica) and listens on addrs.
func (e *Env) spawn(manager string, addrs operatorAddrs, dataDir, logPath string) (*exec.Cmd, chan struct{}, error) {
	keyFile := filepath.Join(e.workDir, "token.key")
	if err := os.WriteFile(keyFile, []byte(TokenKey), 0o600); err != nil {
		return nil, nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	args := []string{
		"--kubeconfig", e.operatorKubeconfig,
		"--health-probe-bind-address", addrs.probe,
		"--metrics-bind-address", addrs.metrics,
		"--metrics-secure=false",
		"--meetergo-api-url", e.MeetergoURL,
		"--receiver-bind-address", addrs.receiver,
		"--receiver-public-url", e.ReceiverURL,
		"--allow-insecure-http",
		"--data-dir", dataDir,
		"--token-key-file", keyFile,
		"--quota-poll-interval", "2s",
	}
	if e.opts.LeaderElection {
		args = append(args, "--leader-elect", "--namespace", e.opts.Namespace)
	}
	args = append(args, e.opts.ExtraArgs...)
	cmd := exec.Command(manager, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Forwarding goes through the loopback proxy; nothing else is proxied
	// (Go never proxies loopback destinations such as meetergo's fake and
	// the API server here).
	cmd.Env = append(os.Environ(), "HTTP_PROXY="+e.proxyURL, "http_proxy="+e.proxyURL, "NO_PROXY=", "no_proxy=")
	cmd.Env = append(cmd.Env, e.opts.OperatorEnv...)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(exited) }()
	return cmd, exited, nil
}

// waitReady waits until the operator's readiness probe passes.
func (e *Env) waitReady(timeout time.Duration) error {
	return waitReady(e.ReadyzURL, e.OperatorLog, e.exited, timeout)
}

// waitReady waits until readyz answers 200, failing early if the process
// exits (closing exited) meanwhile; the error then holds its log's tail.
func waitReady(readyz, logPath string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(readyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("the operator exited during start-up; its log:\n%s", Tail(logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the operator is not ready after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// OperatorRunning tells whether the operator process started by
// StartOperator is still running.
func (e *Env) OperatorRunning() bool {
	if e.operator == nil {
		return false
	}
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

// OperatorPID is the operator process's ID while StartOperator's process
// runs, else 0.
func (e *Env) OperatorPID() int {
	if !e.OperatorRunning() {
		return 0
	}
	return e.operator.Process.Pid
}

// ReceiverAddr is the operator receiver's host:port on 127.0.0.1.
func (e *Env) ReceiverAddr() string { return e.receiver }

// WorkDir is the environment's directory (removed by Stop); the operator's
// data directory, log and token key are in it.
func (e *Env) WorkDir() string { return e.workDir }

// DataDir is the operator's data directory.
func (e *Env) DataDir() string { return filepath.Join(e.workDir, "data") }

// StopAPIServer takes the API server away (etcd keeps running); it needs
// Options.RestartableAPIServer.
func (e *Env) StopAPIServer() error { return e.K8s.StopAPIServer() }

// StartAPIServer brings the API server back after StopAPIServer, on the
// same address with the same certificates.
func (e *Env) StartAPIServer() error { return e.K8s.StartAPIServer() }

// KillOperator ends the operator with SIGKILL: no shutdown of any kind.
func (e *Env) KillOperator() {
	e.signalOperator(syscall.SIGKILL)
}

// StopOperator ends the operator with SIGTERM and waits for it.
func (e *Env) StopOperator() {
	e.signalOperator(syscall.SIGTERM)
}

func (e *Env) signalOperator(sig syscall.Signal) {
	if e.operator == nil {
		return
	}
	signalAndWait(e.operator, e.exited, sig)
	e.operator = nil
}

// signalAndWait sends sig to cmd's process and waits for it to exit,
// killing it after 15 s.
func signalAndWait(cmd *exec.Cmd, exited <-chan struct{}, sig syscall.Signal) {
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Kubectl runs the real kubectl against the control plane.
func (e *Env) Kubectl(args ...string) (string, error) {
	out, err := exec.Command(e.K8s.Kubectl(), append([]string{"--kubeconfig", e.K8s.KubeconfigPath}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Stop ends everything Start, StartOperator and StartReplica started.
func (e *Env) Stop() {
	e.StopOperator()
	e.stopReplicas()
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
	e.cleanup = nil
	if e.workDir != "" {
		_ = os.RemoveAll(e.workDir)
	}
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreeAddr is a free TCP address on 127.0.0.1 (host:port).
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Replica is one more operator process beside the others, as a Deployment
// with several replicas runs them: same binary, user, namespace, token key
// and arguments, with its own receiver, probe and metrics ports, data
// directory and log. Every replica registers Env.ReceiverURL at meetergo
// (the Service's URL in a cluster), where only StartOperator's process
// listens: to reach one replica, post to its ReceiverURL with the
// registered path.
type Replica struct {
	// N numbers the replicas from 1 in the order StartReplica made them.
	N int
	// ReceiverURL is this replica's own receiver (http://127.0.0.1:port).
	ReceiverURL string
	// MetricsURL and ReadyzURL are its metrics and readiness probe.
	MetricsURL, ReadyzURL string
	// Log is its log file; DataDir its data directory.
	Log, DataDir string

	cmd    *exec.Cmd
	exited chan struct{}
}

// StartReplica starts one more operator process (Options.Manager) and waits
// until it is ready. Replicas need Options.LeaderElection: without it each
// would reconcile. Stop ends every replica still running.
func (e *Env) StartReplica() (*Replica, error) {
	if !e.opts.LeaderElection {
		return nil, errors.New("replicas need Options.LeaderElection")
	}
	r := &Replica{N: len(e.replicas) + 1}
	var addrs operatorAddrs
	for _, a := range []*string{&addrs.receiver, &addrs.probe, &addrs.metrics} {
		var err error
		if *a, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	r.ReceiverURL = "http://" + addrs.receiver
	r.MetricsURL = "http://" + addrs.metrics + "/metrics"
	r.ReadyzURL = "http://" + addrs.probe + "/readyz"
	dir := filepath.Join(e.workDir, fmt.Sprintf("replica-%d", r.N))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r.Log = filepath.Join(dir, "operator.log")
	r.DataDir = filepath.Join(dir, "data")
	cmd, exited, err := e.spawn(e.opts.Manager, addrs, r.DataDir, r.Log)
	if err != nil {
		return nil, err
	}
	r.cmd, r.exited = cmd, exited
	e.replicas = append(e.replicas, r)
	if err := waitReady(r.ReadyzURL, r.Log, r.exited, 30*time.Second); err != nil {
		return nil, fmt.Errorf("replica %d: %w", r.N, err)
	}
	return r, nil
}

// Running tells whether the replica's process is still running.
func (r *Replica) Running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// PID is the replica's process ID.
func (r *Replica) PID() int { return r.cmd.Process.Pid }

// Kill ends the replica with SIGKILL (no shutdown of any kind: it does not
// hand its Lease back) and waits for it to exit.
func (r *Replica) Kill() { signalAndWait(r.cmd, r.exited, syscall.SIGKILL) }

// Stop ends the replica with SIGTERM and waits for it (SIGKILL after 15 s).
func (r *Replica) Stop() {
	if r.Running() {
		signalAndWait(r.cmd, r.exited, syscall.SIGTERM)
	}
}

// stopReplicas stops every replica still running, all at once.
func (e *Env) stopReplicas() {
	done := make(chan struct{})
	for _, r := range e.replicas {
		go func() { r.Stop(); done <- struct{}{} }()
	}
	for range e.replicas {
		<-done
	}
	e.replicas = nil
}
