package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// Events sent without pause while the receiver token is rotated three
// times: meetergo switches to each new token only once every receiver
// accepts it, so no delivery is refused.
func TestEventsAcrossTokenRotationsAreNeverRefused(t *testing.T) {
	g := NewWithT(t)
	const ns = "rotation"
	env, err := localenv.Start(localenv.Options{Manager: operatorBinary(t), Namespace: ns})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if (t.Failed() || os.Getenv("E2E_LOG") != "") && env.OperatorLog != "" {
			t.Logf("operator log:\n%s", localenv.Tail(env.OperatorLog, 80))
		}
		env.Stop()
	})
	g.Expect(env.StartOperator()).To(Succeed())
	ctx := context.Background()
	c := env.K8s.Client
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "meetergo-api"},
		StringData: map[string]string{"token": localenv.Token}})).To(Succeed())
	w := echoWebhook(ns, "rotating")
	g.Expect(c.Create(ctx, w)).To(Succeed())
	g.Eventually(readyAndRegistered(env, w), 30*time.Second, 100*time.Millisecond).Should(Succeed())

	// meetergo delivers without pause, as a busy company would.
	var (
		mu       sync.Mutex
		answers  = map[int]int{}
		failures []string
		sent     = map[string]bool{}
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := env.Meetergo.Deliver(ctx, "booking_created", fake.DeliverOptions{})
			mu.Lock()
			if err != nil {
				failures = append(failures, err.Error())
			}
			for _, r := range res {
				answers[r.StatusCode]++
				if r.StatusCode != http.StatusOK {
					failures = append(failures, fmt.Sprintf("answer %d (%v)", r.StatusCode, r.Err))
				}
				sent[r.Endpoint] = true
			}
			mu.Unlock()
		}
	}()

	for i := 1; i <= 3; i++ {
		// A merge patch of the annotation alone: the receiver writes the
		// status every few seconds, so an update could meet a conflict.
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"2026-12-03T10:0%d:00Z"}}}`, webhooksv1alpha1.RotateTokenAnnotation, i)
		g.Expect(c.Patch(ctx, w.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
		g.Eventually(func(g Gomega) {
			got := &webhooksv1alpha1.MeetergoWebhook{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
			g.Expect(got.Status.TokenGeneration).To(BeEquivalentTo(i))
			mu.Lock()
			defer mu.Unlock()
			g.Expect(sent).To(HaveLen(i+1), "meetergo posts to the token of generation %d", i)
		}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
	}
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers during the rotations: %v", answers)
	g.Expect(failures).To(BeEmpty())
	g.Expect(answers[http.StatusOK]).To(BeNumerically(">=", 20))
}
