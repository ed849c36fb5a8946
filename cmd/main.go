// Command manager runs the meetergo operator: the receiver (meetergo's
// deliveries, forwarded to the target Services), health probes and metrics
// on every replica, in a manager that never stops for leader election; and
// the MeetergoWebhook reconciler in leader terms beside it (internal/leader):
// a replica that loses the Lease stops reconciling and campaigns again,
// while its receiver keeps serving.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/controller"
	"github.com/meetergo-operator/meetergo-operator/internal/leader"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
	"github.com/meetergo-operator/meetergo-operator/internal/version"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(webhooksv1alpha1.AddToScheme(scheme))
}

// flags are the manager's command line.
type flags struct {
	metricsAddr, probeAddr       string
	secureMetrics, leaderElect   bool
	leaseDuration, renewDeadline time.Duration
	retryPeriod                  time.Duration
	namespace                    string
	meetergoURL                  string
	meetergoRPM, meetergoBurst   int
	receiverURL                  string
	allowHTTP                    bool
	webhookLimit, concurrency    int
	resync, quotaPoll            time.Duration
	tokenKeySecret, tokenKeyFile string
	receiver                     receiver.Options
}

func parseFlags() (flags, zap.Options) {
	var f flags
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", "0", "Address the metrics endpoint binds to, e.g. :8443 (https) or :8080 (http); 0 disables it.")
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.BoolVar(&f.secureMetrics, "metrics-secure", true, "Serve metrics over https with authentication and authorization.")
	flag.BoolVar(&f.leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles.")
	flag.DurationVar(&f.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long other replicas wait after the leader's last renewal before taking over.")
	flag.DurationVar(&f.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps failing to renew its Lease before it stops reconciling (its receiver keeps serving) and campaigns again.")
	flag.DurationVar(&f.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often the leader renews, and other replicas try to take over.")
	flag.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "The operator's own namespace: the leader election Lease and the token key Secret live there (default: $POD_NAMESPACE).")
	flag.StringVar(&f.meetergoURL, "meetergo-api-url", meetergo.DefaultBaseURL, "Base URL of the meetergo API.")
	flag.IntVar(&f.meetergoRPM, "meetergo-requests-per-minute", 100, "Requests a minute the operator sends per meetergo credential (meetergo allows 100).")
	flag.IntVar(&f.meetergoBurst, "meetergo-burst", 100, "Requests one credential may send at once (meetergo allows 200).")
	flag.StringVar(&f.receiverURL, "receiver-public-url", "", "Public base URL at which meetergo reaches the receiver, e.g. https://hooks.example.com; a resource's spec.receiverURL overrides it.")
	flag.BoolVar(&f.allowHTTP, "allow-insecure-http", false, "Allow plain http:// receiver URLs. For local use and tests only: the URL carries a secret token.")
	flag.IntVar(&f.webhookLimit, "webhook-limit", 6, "meetergo's limit of webhooks per company.")
	flag.IntVar(&f.concurrency, "concurrency", 4, "MeetergoWebhooks reconciled at once (decisions within one company stay serialised).")
	flag.DurationVar(&f.resync, "resync-period", 10*time.Minute, "How often each registration is compared with meetergo to repair drift (with ±10% jitter).")
	flag.DurationVar(&f.quotaPoll, "quota-poll-interval", 10*time.Second, "How often a resource waiting for one of its company's slots looks again.")
	flag.StringVar(&f.tokenKeySecret, "token-key-secret", "meetergo-operator-token-key", "Secret in --namespace holding the key receiver tokens are derived from; created with a random key when missing.")
	flag.StringVar(&f.tokenKeyFile, "token-key-file", "", "File holding the token key (at least 32 bytes); when set, --token-key-secret is not used. For local runs.")
	flag.StringVar(&f.receiver.BindAddress, "receiver-bind-address", receiver.DefaultBindAddress, "Address the receiver (meetergo's deliveries) listens on; it serves on every replica.")
	flag.StringVar(&f.receiver.DataDir, "data-dir", "/var/lib/meetergo-operator", "Directory of the receiver's durable queue (a persistent volume per replica).")
	flag.DurationVar(&f.receiver.TokenGracePeriod, "token-grace-period", receiver.DefaultTokenGracePeriod, "How long the previous receiver token is accepted after a rotation.")
	flag.DurationVar(&f.receiver.DedupWindow, "dedup-window", receiver.DefaultDedupWindow, "How long a delivered event is remembered to drop meetergo's duplicates.")
	flag.Float64Var(&f.receiver.RateLimit, "receiver-rate-limit", 0, "Requests a second accepted per resource (0: no limit); excess gets 429.")
	flag.IntVar(&f.receiver.RateBurst, "receiver-rate-burst", 0, "Burst of --receiver-rate-limit (default: the limit).")
	flag.IntVar(&f.receiver.StoreMaxBytes, "receiver-store-max-bytes", receiver.DefaultStoreMaxBytes, "Bound of the receiver's store on disk (set it below the volume's size); when full, new events get 503 until deliveries free room.")
	flag.IntVar(&f.receiver.KeptMaxEvents, "receiver-kept-max-events", receiver.DefaultKeptMaxEvents, "Most events with a valid token but a body this version cannot read that are kept per resource for a replay; beyond it (or --receiver-kept-max-bytes) such bodies are answered 200 and dropped.")
	flag.Int64Var(&f.receiver.KeptMaxBytes, "receiver-kept-max-bytes", receiver.DefaultKeptMaxBytes, "Most bytes of kept (unread) bodies per resource; see --receiver-kept-max-events.")
	flag.Int64Var(&f.receiver.MaxBodyBytes, "receiver-max-body-bytes", receiver.DefaultMaxBodyBytes, "Largest request body accepted; larger ones get 413 (meetergo's are at most about 100 KB).")
	flag.IntVar(&f.receiver.LargeBodyReads, "receiver-large-body-reads", receiver.DefaultLargeBodyReads, "Request bodies larger than 64 KiB read at once; others wait for their turn within the body read timeout (smaller bodies never wait).")
	flag.IntVar(&f.receiver.Workers, "receiver-workers", forward.DefaultWorkers, "Deliveries to target Services attempted at once.")
	flag.DurationVar(&f.receiver.RetryBaseDelay, "delivery-retry-base-delay", forward.DefaultRetryBaseDelay, "First wait before a failed delivery is tried again (it doubles up to --delivery-retry-max-delay).")
	flag.DurationVar(&f.receiver.RetryMaxDelay, "delivery-retry-max-delay", forward.DefaultRetryMaxDelay, "Longest wait between two attempts of a delivery.")
	flag.DurationVar(&f.receiver.DeadLetterRetention, "delivery-dead-letter-retention", forward.DefaultDeadLetterRetention, "How long a dead letter (a delivery that used up its attempts) is kept for a replay.")
	flag.DurationVar(&f.receiver.EventInterval, "receiver-event-interval", receiver.DefaultEventInterval, "At most one Kubernetes Event per resource and reason per interval (later occurrences are counted in it).")
	flag.DurationVar(&f.receiver.StatusFlushInterval, "receiver-status-interval", receiver.DefaultStatusFlushInterval, "How often status.delivery is updated.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	return f, opts
}

func main() {
	f, zopts := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	log := ctrl.Log.WithName("setup")
	if err := run(f); err != nil {
		log.Error(err, "operator failed")
		os.Exit(1)
	}
}

func run(f flags) error {
	log := ctrl.Log.WithName("setup")
	log.Info("starting meetergo-operator", "version", version.Version)
	election := leader.Election{
		Enabled:       f.leaderElect,
		Namespace:     f.namespace,
		Name:          "meetergo-operator.webhooks.meetergo-operator.io",
		LeaseDuration: f.leaseDuration,
		RenewDeadline: f.renewDeadline,
		RetryPeriod:   f.retryPeriod,
	}
	if err := election.Validate(); err != nil {
		return err
	}

	metricsOpts := metricsserver.Options{
		BindAddress:   f.metricsAddr,
		SecureServing: f.secureMetrics,
		// HTTP/2 is off: it exposes servers to the Stream Cancellation and
		// Rapid Reset CVEs.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if f.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	cfg := ctrl.GetConfigOrDie()
	// The always-on manager: no leader election, so that nothing here
	// stops when the Lease is lost.
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: f.probeAddr,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()

	key, keeper, err := tokenKey(ctx, f, cfg, election.Name)
	if err != nil {
		return err
	}
	if keeper != nil {
		// Every replica keeps the Secret, leading or not.
		if err := mgr.Add(keeper); err != nil {
			return err
		}
	}
	deriver, err := token.NewDeriver(key)
	if err != nil {
		return err
	}
	// One client for the process: its per-credential budget outlives
	// leader terms.
	api, err := meetergo.NewHTTPClient(meetergo.Options{
		BaseURL:           f.meetergoURL,
		UserAgent:         "meetergo-operator/" + version.Version,
		RequestsPerMinute: f.meetergoRPM,
		Burst:             f.meetergoBurst,
		Registerer:        metrics.Registry,
		Logger:            ctrl.Log.WithName("meetergo"),
	})
	if err != nil {
		return err
	}

	ropts := f.receiver
	ropts.Tokens = deriver
	if _, err := receiver.Setup(ctx, mgr, ropts); err != nil {
		return fmt.Errorf("setting up the receiver: %w", err)
	}

	// The reconciler runs in leader terms beside the receiver.
	terms, err := leader.New(leader.Options{
		Config:   cfg,
		Scheme:   scheme,
		Base:     mgr,
		Election: election,
		Setup:    reconciler(f, api, deriver),
		Log:      ctrl.Log.WithName("leader"),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(terms); err != nil {
		return err
	}

	// Ready means the receiver is: leading is not required.
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// reconciler sets up a leader term's MeetergoWebhook reconciler: a fresh
// one on the term's manager, with fresh company caches.
func reconciler(f flags, api meetergo.Client, deriver *token.Deriver) leader.Setup {
	return func(ctx context.Context, mgr ctrl.Manager) (func(context.Context) error, error) {
		rec := &controller.MeetergoWebhookReconciler{
			Client:   mgr.GetClient(),
			Meetergo: api,
			Tokens:   deriver,
			Recorder: mgr.GetEventRecorder("meetergo-operator"),
			Options: controller.Options{
				ReceiverURL:       f.receiverURL,
				AllowHTTP:         f.allowHTTP,
				WebhookLimit:      f.webhookLimit,
				ResyncPeriod:      f.resync,
				QuotaPollInterval: f.quotaPoll,
				Concurrency:       f.concurrency,
				TargetsReady:      receiver.TargetsReady,
			},
		}
		if err := rec.SetupWithManager(ctx, mgr); err != nil {
			return nil, fmt.Errorf("setting up the MeetergoWebhook controller: %w", err)
		}
		return rec.Drain, nil
	}
}

// tokenKey loads the key receiver tokens are derived from: a file for local
// runs (nothing to keep then), else a Secret in the operator's namespace,
// created when missing, and a Keeper that restores the Secret with this key
// should it be deleted while the process runs. With leader election on, a
// replica that finds no Secret while the Lease is live waits up to a lease
// duration for a running replica's Keeper to restore it (see token.LoadKey).
func tokenKey(ctx context.Context, f flags, cfg *rest.Config, leaseName string) ([]byte, *token.Keeper, error) {
	if f.tokenKeyFile != "" {
		b, err := os.ReadFile(f.tokenKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("reading --token-key-file: %w", err)
		}
		return b, nil, nil
	}
	if f.namespace == "" {
		return nil, nil, fmt.Errorf("--namespace (or $POD_NAMESPACE) is needed to find the token key Secret; or pass --token-key-file")
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, err
	}
	o := token.KeyOptions{
		Namespace:   f.namespace,
		Name:        f.tokenKeySecret,
		RestoreWait: f.leaseDuration,
		Log:         ctrl.Log.WithName("token-key"),
	}
	if f.leaderElect {
		o.LeaseName = leaseName
	}
	key, err := token.LoadKey(ctx, cl, o)
	if err != nil {
		return nil, nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	keeper, err := token.NewKeeper(token.KeeperOptions{
		Client:    cl,
		Metadata:  md,
		Namespace: f.namespace,
		Name:      f.tokenKeySecret,
		Key:       key,
		Log:       ctrl.Log.WithName("token-key"),
	})
	if err != nil {
		return nil, nil, err
	}
	return key, keeper, nil
}
