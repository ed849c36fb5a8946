package token

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KeySecretKey is the data key of the token key Secret.
const KeySecretKey = "key"

// The operator keeps its token key in a Secret of its own namespace and
// creates it on first start; it writes no Secret anywhere else.
// +kubebuilder:rbac:groups="",namespace=system,resources=secrets,verbs=create

// LoadOrCreateKey returns the token key kept in the Secret namespace/name,
// creating the Secret with a random key when it does not exist. Replicas
// starting together agree: the loser of the create reads the winner's key.
func LoadOrCreateKey(ctx context.Context, c client.Client, namespace, name string) ([]byte, error) {
	for range 3 {
		s := &corev1.Secret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s)
		if err == nil {
			key := s.Data[KeySecretKey]
			if len(key) < KeySize {
				return nil, fmt.Errorf("Secret %s/%s: key %q holds %d bytes, want at least %d", namespace, name, KeySecretKey, len(key), KeySize)
			}
			return key, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the token key Secret %s/%s: %w", namespace, name, err)
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app.kubernetes.io/name": "meetergo-operator"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{KeySecretKey: NewKey()},
		}
		if err := c.Create(ctx, s); err == nil {
			return s.Data[KeySecretKey], nil
		} else if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the token key Secret %s/%s: %w", namespace, name, err)
		}
	}
	return nil, fmt.Errorf("token key Secret %s/%s: gave up after concurrent creates", namespace, name)
}
