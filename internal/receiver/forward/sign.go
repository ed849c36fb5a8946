package forward

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// secretPrefix starts a Standard Webhooks secret: "whsec_" and the key in
// base64.
const secretPrefix = "whsec_"

// Sign returns the Standard Webhooks webhook-signature value for a message:
// "v1," and the base64 HMAC-SHA256, under key, of "id.timestamp.body".
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ParseSecret decodes a Standard Webhooks secret, "whsec_" and base64 (the
// prefix is optional, as in the reference libraries), to its key.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), secretPrefix)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not a Standard Webhooks secret (whsec_ and base64)")
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("key of %d bytes, want at least 16", len(key))
	}
	return key, nil
}

// secretTTL is how long a signing key read from its Secret is used before
// it is read again: a changed Secret takes effect within it.
const secretTTL = time.Minute

// signingKeys reads signing keys from Secrets, uncached by the manager
// (Secrets are watched by metadata only) and kept here for secretTTL.
type signingKeys struct {
	reader client.Reader
	now    func() time.Time

	mu   sync.Mutex
	keys map[webhooksv1alpha1.SecretKeyReference]map[string]signingKey // by ref, then namespace
}

type signingKey struct {
	key     []byte
	err     error
	fetched time.Time
}

// get returns the key w's deliveries are signed with, nil if unsigned.
func (s *signingKeys) get(ctx context.Context, w *webhooksv1alpha1.MeetergoWebhook) ([]byte, error) {
	ref := w.Spec.Delivery.SigningSecretRef
	if ref == nil {
		return nil, nil
	}
	now := s.now()
	s.mu.Lock()
	k, ok := s.keys[*ref][w.Namespace]
	s.mu.Unlock()
	if ok && now.Sub(k.fetched) < secretTTL {
		return k.key, k.err
	}
	k = signingKey{fetched: now}
	k.key, k.err = s.read(ctx, w.Namespace, *ref)
	s.mu.Lock()
	if s.keys[*ref] == nil {
		s.keys[*ref] = map[string]signingKey{}
	}
	s.keys[*ref][w.Namespace] = k
	s.mu.Unlock()
	return k.key, k.err
}

func (s *signingKeys) read(ctx context.Context, namespace string, ref webhooksv1alpha1.SecretKeyReference) ([]byte, error) {
	secret := &corev1.Secret{}
	if err := s.reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("signing Secret %q not found", ref.Name)
		}
		return nil, fmt.Errorf("reading signing Secret %q: %w", ref.Name, err)
	}
	v, ok := secret.Data[ref.Key]
	if !ok {
		return nil, fmt.Errorf("signing Secret %q has no key %q", ref.Name, ref.Key)
	}
	key, err := ParseSecret(string(v))
	if err != nil {
		return nil, fmt.Errorf("signing Secret %q key %q: %w", ref.Name, ref.Key, err)
	}
	return key, nil
}
