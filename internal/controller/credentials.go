package controller

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// Keys of the credentials Secret.
const (
	SecretKeyToken  = "token"
	SecretKeyUserID = "userId"
)

// credential reads the resource's credentials Secret. It reads with an
// uncached client: the operator watches Secrets' metadata only, so Secret
// contents are never cached and are read only where a resource names them.
func (r *MeetergoWebhookReconciler) credential(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook) (meetergo.Credential, error) {
	name := obj.Spec.Credentials.SecretRef.Name
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return meetergo.Credential{}, stalledf(ReasonSecretNotFound, "Secret %s/%s named in spec.credentials.secretRef does not exist; create it with the key %q", obj.Namespace, name, SecretKeyToken)
		}
		return meetergo.Credential{}, err
	}
	tok := strings.TrimSpace(string(secret.Data[SecretKeyToken]))
	if tok == "" {
		return meetergo.Credential{}, stalledf(ReasonSecretKeyMissing, "Secret %s/%s has no key %q holding the meetergo credential", obj.Namespace, name, SecretKeyToken)
	}
	cred := meetergo.Credential{Token: tok, UserID: strings.TrimSpace(string(secret.Data[SecretKeyUserID]))}
	if cred.Kind() == meetergo.UnsupportedCredential {
		return meetergo.Credential{}, stalledf(ReasonUnsupportedCredential, "Secret %s/%s: %s", obj.Namespace, name, unsupportedCredentialMessage)
	}
	if cred.Kind() == meetergo.PlatformKey && cred.UserID == "" {
		return meetergo.Credential{}, stalledf(ReasonSecretKeyMissing, "Secret %s/%s holds a platform API key but no key %q: a platform key acts for one user, whose uuid goes there", obj.Namespace, name, SecretKeyUserID)
	}
	return cred, nil
}
