package token

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// ErrKeyDiverged is wrapped by the error a Keeper stops with when the Secret
// holds a valid key other than the one this replica derives tokens with.
var ErrKeyDiverged = errors.New("the token key Secret holds another key than this replica")

// Mismatch reasons of meetergo_operator_token_key_secret_mismatch.
const (
	// MismatchDifferent: the Secret holds a valid key other than this
	// replica's; the Keeper stops (the process exits and restarts with it).
	MismatchDifferent = "different"
	// MismatchUnusable: the Secret's key is shorter than KeySize. No
	// replica could start with it, so the Keeper keeps serving with its own
	// key and says so until the Secret is fixed.
	MismatchUnusable = "unusable"
)

var (
	keyRestores = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meetergo_operator_token_key_secret_restores_total",
		Help: "Times this replica re-created the token key Secret, which had been deleted, with the key it holds.",
	})
	keyMismatch = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meetergo_operator_token_key_secret_mismatch",
		Help: "1 while the token key Secret holds a key other than the one this replica derives receiver tokens with, by reason: different (the replica exits to load the Secret's key) or unusable (shorter than 32 bytes; the replica keeps its key until the Secret is fixed).",
	}, []string{"reason"})

	keeperMetricsOnce sync.Once
)

func registerKeeperMetrics() {
	keeperMetricsOnce.Do(func() {
		metrics.Registry.MustRegister(keyRestores, keyMismatch)
		keyMismatch.WithLabelValues(MismatchDifferent).Set(0)
		keyMismatch.WithLabelValues(MismatchUnusable).Set(0)
	})
}

// KeeperOptions configure a Keeper.
type KeeperOptions struct {
	// Client reads and creates the Secret; it must read uncached (a cached
	// client would watch every Secret's contents cluster-wide).
	Client client.Client
	// Metadata watches the Secret's metadata, by name.
	Metadata metadata.Interface
	// Namespace and Name locate the Secret.
	Namespace, Name string
	// Key is the key this replica derives tokens with.
	Key []byte
	// Log says what the Keeper does; it never logs the key.
	Log logr.Logger
	// MaxRetryDelay bounds the wait between failed attempts (30 s when 0).
	MaxRetryDelay time.Duration
}

// Keeper keeps the token key Secret on every replica, leader or not: when
// the Secret is deleted it re-creates it at once with the key the replica
// holds (so every replica, and every replica started later, keeps deriving
// the same tokens), and when the Secret holds another valid key it stops
// with an error wrapping ErrKeyDiverged so that the process exits and its
// restart loads the Secret's key. It is a manager.Runnable that does not
// need leader election.
//
// It watches the one Secret by name (a field selector, metadata only: one
// watch per replica, no polling) and, on every change and at start, reads
// the Secret uncached and compares its key with its own.
type Keeper struct {
	o    KeeperOptions
	ref  string
	kick chan struct{}
}

// NewKeeper returns a Keeper; Start runs it.
func NewKeeper(o KeeperOptions) (*Keeper, error) {
	switch {
	case o.Client == nil || o.Metadata == nil:
		return nil, errors.New("token.Keeper needs a Client and a Metadata client")
	case o.Namespace == "" || o.Name == "":
		return nil, errors.New("token.Keeper needs the Secret's namespace and name")
	case len(o.Key) < KeySize:
		return nil, fmt.Errorf("token.Keeper: the key must be at least %d bytes", KeySize)
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = 30 * time.Second
	}
	o.Key = append([]byte(nil), o.Key...)
	registerKeeperMetrics()
	return &Keeper{o: o, ref: o.Namespace + "/" + o.Name, kick: make(chan struct{}, 1)}, nil
}

// NeedLeaderElection is false: every replica keeps the Secret.
func (k *Keeper) NeedLeaderElection() bool { return false }

// Start keeps the Secret until ctx ends (nil) or the Secret holds another
// valid key (an error wrapping ErrKeyDiverged).
func (k *Keeper) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	inf := metadatainformer.NewFilteredMetadataInformer(k.o.Metadata, corev1.SchemeGroupVersion.WithResource("secrets"), k.o.Namespace, 0, toolscache.Indexers{},
		func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.o.Name).String()
		}).Informer()
	// Every notification only wakes the check, which reads the Secret
	// itself: a deletion missed while the watch was down arrives as a
	// deletion after the relist.
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.wake() },
		UpdateFunc: func(any, any) { k.wake() },
		DeleteFunc: func(any) { k.wake() },
	}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { inf.RunWithContext(ctx) })
	// Check at once (the Secret may be gone already), and again once the
	// watch runs: a deletion between the first check and the watch's list
	// sends no notification.
	k.wake()
	wg.Go(func() {
		if toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			k.wake()
		}
	})
	delay := time.Second
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.kick:
		case <-retry:
		}
		retry = nil
		err := k.check(ctx)
		switch {
		case err == nil:
			delay = time.Second
		case errors.Is(err, ErrKeyDiverged):
			return err
		case ctx.Err() != nil:
			return nil
		default:
			k.o.Log.Error(err, "keeping the token key Secret: trying again", "secret", k.ref, "in", delay.String())
			retry = time.After(delay)
			delay = min(2*delay, k.o.MaxRetryDelay)
		}
	}
}

func (k *Keeper) wake() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// check restores a missing Secret and compares its key with the replica's.
func (k *Keeper) check(ctx context.Context) error {
	for range 3 {
		key, found, err := readKey(ctx, k.o.Client, k.o.Namespace, k.o.Name)
		switch {
		case errors.Is(err, errUnusableKey):
			// Logged before the metric says so: a reader of the metric
			// finds the log line written.
			k.o.Log.Error(err, "the token key Secret holds an unusable key: this replica keeps deriving tokens with the key it holds; replicas that start now fail until the Secret holds a key of at least 32 bytes (or is deleted, and then restored by a running replica)", "secret", k.ref)
			keyMismatch.WithLabelValues(MismatchDifferent).Set(0)
			keyMismatch.WithLabelValues(MismatchUnusable).Set(1)
			return nil // nothing to retry: the next change of the Secret wakes the check
		case err != nil:
			return err
		case found && bytes.Equal(key, k.o.Key):
			keyMismatch.WithLabelValues(MismatchDifferent).Set(0)
			keyMismatch.WithLabelValues(MismatchUnusable).Set(0)
			return nil
		case found:
			keyMismatch.WithLabelValues(MismatchUnusable).Set(0)
			keyMismatch.WithLabelValues(MismatchDifferent).Set(1)
			k.o.Log.Error(ErrKeyDiverged, "the token key Secret holds another key than the one this replica derives receiver tokens with: exiting so that the restart loads the Secret's key (the Secret's key wins)", "secret", k.ref)
			return fmt.Errorf("token key Secret %s: %w", k.ref, ErrKeyDiverged)
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: k.o.Namespace, Name: k.o.Name, Labels: map[string]string{"app.kubernetes.io/name": "meetergo-operator"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{KeySecretKey: k.o.Key},
		}
		err = k.o.Client.Create(ctx, s)
		if err == nil {
			k.o.Log.Info("the token key Secret was deleted: restored it with the key this replica holds", "secret", k.ref)
			keyRestores.Inc()
			continue // read it back: compare what is there now
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("restoring the token key Secret %s: %w", k.ref, err)
		}
		// Another replica restored it first (or created a new one): compare.
	}
	return fmt.Errorf("token key Secret %s: deleted again and again while being restored", k.ref)
}
