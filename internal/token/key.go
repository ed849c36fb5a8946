package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KeySecretKey is the data key of the token key Secret.
const KeySecretKey = "key"

// The operator keeps its token key in a Secret of its own namespace: it
// creates it on first start, and every replica's Keeper re-creates it when
// it is deleted (create), reads it (get) and watches it by name (list,
// watch; metadata only). It writes no Secret anywhere else. Each replica
// also reads the leader election Lease at start (see LoadKey); get on
// leases is granted by the leader election Role.
// +kubebuilder:rbac:groups="",namespace=system,resources=secrets,verbs=create;get;list;watch

// Defaults of KeyOptions.
const (
	DefaultRestoreWait  = 15 * time.Second
	DefaultPollInterval = 500 * time.Millisecond
)

// KeyOptions say where the token key Secret is and how a starting replica
// that does not find it behaves.
type KeyOptions struct {
	// Namespace and Name locate the Secret.
	Namespace, Name string
	// LeaseName names the leader election Lease in Namespace; empty when
	// leader election is off. See LoadKey.
	LeaseName string
	// RestoreWait bounds how long a starting replica waits for a running
	// one to restore a missing Secret (DefaultRestoreWait when 0).
	RestoreWait time.Duration
	// PollInterval is how often it looks meanwhile (DefaultPollInterval
	// when 0).
	PollInterval time.Duration
	// Log receives what the wait is about; never the key.
	Log logr.Logger
	// Now is the clock the Lease is judged by (time.Now when nil).
	Now func() time.Time
}

func (o *KeyOptions) defaults() {
	if o.RestoreWait <= 0 {
		o.RestoreWait = DefaultRestoreWait
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
}

// LoadOrCreateKey returns the token key kept in the Secret namespace/name,
// creating the Secret with a random key when it does not exist. Replicas
// starting together agree: the loser of the create reads the winner's key.
// It is LoadKey without a Lease: it never waits for a restore.
func LoadOrCreateKey(ctx context.Context, c client.Client, namespace, name string) ([]byte, error) {
	return LoadKey(ctx, c, KeyOptions{Namespace: namespace, Name: name})
}

// LoadKey returns the token key kept in the Secret, creating the Secret with
// a random key when it does not exist. Replicas starting together agree: the
// loser of the create reads the winner's key. c must read uncached.
//
// A missing Secret is not always a first install: someone may have deleted
// it while replicas run, each holding the key in memory, and each replica's
// Keeper puts it back at once with that key. A replica starting in that
// moment must not race the restore with a new random key, which would
// split the replicas (events routed to the other half get 404) and make the
// leader re-register every webhook. So when LeaseName is set and that Lease
// is live (a holder, renewed within its lease duration, by the holder's
// clock), a replica of this operator is running: LoadKey waits up to
// RestoreWait for the Secret to come back and loads it. Only if nothing
// restored it by then (no running replica has a Keeper: an older version)
// does it create a new key. With no live Lease (first install, every
// replica stopped, or leader election off, so LeaseName is empty) it
// creates at once. A Lease misjudged either way is safe: a needless wait
// is bounded, and a key created beside a running replica is caught by that
// replica's Keeper, which sees the Secret holding another key and exits to
// load it.
func LoadKey(ctx context.Context, c client.Client, o KeyOptions) ([]byte, error) {
	o.defaults()
	ref := o.Namespace + "/" + o.Name
	waited := o.LeaseName == ""
	for range 3 {
		key, found, err := readKey(ctx, c, o.Namespace, o.Name)
		if err != nil || found {
			return key, err
		}
		if !waited {
			waited = true
			live, holder, err := leaseLive(ctx, c, o.Namespace, o.LeaseName, o.Now())
			if err != nil {
				return nil, err
			}
			if live {
				o.Log.Info("the token key Secret is missing while a replica holds the leader Lease: waiting for a running replica to restore it",
					"secret", ref, "lease", o.Namespace+"/"+o.LeaseName, "holder", holder, "wait", o.RestoreWait.String())
				key, found, err := waitForKey(ctx, c, o)
				if err != nil || found {
					if found {
						o.Log.Info("the token key Secret was restored: loaded its key", "secret", ref)
					}
					return key, err
				}
				o.Log.Info("the token key Secret was not restored in time (no running replica keeps it): creating a new key; every receiver URL changes and the leader updates the registrations",
					"secret", ref, "wait", o.RestoreWait.String())
			}
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, Labels: map[string]string{"app.kubernetes.io/name": "meetergo-operator"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{KeySecretKey: NewKey()},
		}
		if err := c.Create(ctx, s); err == nil {
			return s.Data[KeySecretKey], nil
		} else if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the token key Secret %s: %w", ref, err)
		}
	}
	return nil, fmt.Errorf("token key Secret %s: gave up after concurrent creates", ref)
}

// errUnusableKey is the error of a Secret whose key is too short.
var errUnusableKey = errors.New("unusable token key")

// readKey reads the Secret's key; found is false when the Secret does not
// exist.
func readKey(ctx context.Context, c client.Reader, namespace, name string) (key []byte, found bool, err error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("reading the token key Secret %s/%s: %w", namespace, name, err)
	}
	key = s.Data[KeySecretKey]
	if len(key) < KeySize {
		return nil, true, fmt.Errorf("%w: Secret %s/%s: key %q holds %d bytes, want at least %d", errUnusableKey, namespace, name, KeySecretKey, len(key), KeySize)
	}
	return key, true, nil
}

// waitForKey polls the Secret until it exists or RestoreWait has passed.
func waitForKey(ctx context.Context, c client.Reader, o KeyOptions) ([]byte, bool, error) {
	deadline := time.NewTimer(o.RestoreWait)
	defer deadline.Stop()
	tick := time.NewTicker(o.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-deadline.C:
			return nil, false, nil
		case <-tick.C:
		}
		key, found, err := readKey(ctx, c, o.Namespace, o.Name)
		if found || (err != nil && !isTransient(err)) {
			return key, found, err
		}
	}
}

// isTransient tells whether a read may succeed if tried again.
func isTransient(err error) bool {
	return !errors.Is(err, errUnusableKey) && !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err)
}

// leaseLive tells whether the Lease has a holder that renewed it within its
// lease duration.
func leaseLive(ctx context.Context, c client.Reader, namespace, name string, now time.Time) (bool, string, error) {
	l := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, l); err != nil {
		if apierrors.IsNotFound(err) {
			return false, "", nil
		}
		return false, "", fmt.Errorf("reading the leader election Lease %s/%s (to tell whether a running replica will restore the token key Secret): %w", namespace, name, err)
	}
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	if holder == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false, holder, nil
	}
	expires := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	return now.Before(expires), holder, nil
}
