package controller

import (
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// rotate sets the rotate-token annotation and waits until status shows gen.
func (w *world) rotate(name, value string, gen int64) {
	w.t.Helper()
	g := NewWithT(w.t)
	g.Expect(w.annotate(name, webhooksv1alpha1.RotateTokenAnnotation, value)).To(Succeed())
	g.Eventually(func() int64 { return w.get(name).Status.TokenGeneration }, wait, 20*time.Millisecond).Should(Equal(gen))
}

// generationAt is the token generation of endpoint for uid (-1: none of 0..9).
func generationAt(uid, endpoint string) int64 {
	d, _ := token.NewDeriver(tokenKey)
	for gen := int64(0); gen < 10; gen++ {
		if strings.HasSuffix(endpoint, d.Token(uid, gen)) {
			return gen
		}
	}
	return -1
}

// annotate sets the rotate-token annotation without waiting.
func (w *world) annotateRotation(name, value string) {
	w.t.Helper()
	NewWithT(w.t).Expect(w.annotate(name, webhooksv1alpha1.RotateTokenAnnotation, value)).To(Succeed())
}

// Found by review: a rotation whose PATCH fails (meetergo
// 503 for a while), then a second rotation before the first reached
// meetergo. Receivers accept only the current and the previous generation,
// so bumping again would refuse the token meetergo still posts with. The
// second rotation now waits until meetergo holds the first one.
func TestSecondRotationWaitsUntilTheFirstReachedMeetergo(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.startOperator(Options{})
	obj := w.create(w.webhook("rotated-twice"))
	w.waitReason("rotated-twice", ReasonRegistered)
	reg := w.ownedBy(obj)[0]

	fid, err := meetergoFk.InjectFault(fake.Fault{Method: "PATCH", Path: "/webhooks/" + itoa(reg.ID), Status: 503})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(fid) })
	w.rotate("rotated-twice", "2026-12-03T10:00:00Z", 1)
	w.waitReason("rotated-twice", ReasonMeetergoUnavailable)
	w.annotateRotation("rotated-twice", "2026-12-03T10:05:00Z")

	// Receivers accept what meetergo posts with, all along.
	g.Consistently(func(g Gomega) {
		cur := w.get("rotated-twice")
		got := generationAt(string(obj.UID), w.ownedBy(obj)[0].Endpoint)
		g.Expect(got).To(BeNumerically(">=", cur.Status.TokenGeneration-1),
			"meetergo posts with generation %d while receivers accept only %d and %d", got, cur.Status.TokenGeneration, cur.Status.TokenGeneration-1)
	}, 2*time.Second, 50*time.Millisecond).Should(Succeed())

	// Once meetergo answers again, both rotations are carried out.
	meetergoFk.RemoveFault(fid)
	g.Eventually(func(g Gomega) {
		cur := w.get("rotated-twice")
		g.Expect(cur.Status.TokenGeneration).To(BeEquivalentTo(2))
		g.Expect(cur.Status.LastHandledRotateToken).To(Equal("2026-12-03T10:05:00Z"))
		g.Expect(generationAt(string(obj.UID), w.ownedBy(obj)[0].Endpoint)).To(BeEquivalentTo(2))
	}, wait, 50*time.Millisecond).Should(Succeed())
}

// Found by review: the same double rotation with a meetergo
// that cuts descriptions (the marker is lost, only the endpoint identifies
// the registration): no second registration, no RegistrationVanished.
func TestSecondRotationWithCutDescriptionsKeepsOneRegistration(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	withFakeSettings(t, func(s *fake.Settings) { s.DescriptionMaxLength = 24 })
	w.startOperator(Options{})
	obj := w.create(w.webhook("rotated-twice-cut"))
	w.waitReason("rotated-twice-cut", ReasonRegistered)
	reg := w.ownedBy(obj)[0]

	fid, err := meetergoFk.InjectFault(fake.Fault{Method: "PATCH", Path: "/webhooks/" + itoa(reg.ID), Status: 503})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(fid) })
	w.rotate("rotated-twice-cut", "2026-12-03T10:00:00Z", 1)
	w.waitReason("rotated-twice-cut", ReasonMeetergoUnavailable)
	// The second rotation comes before the first one reached meetergo.
	w.annotateRotation("rotated-twice-cut", "2026-12-03T10:05:00Z")
	g.Consistently(func() int64 { return w.get("rotated-twice-cut").Status.TokenGeneration }, time.Second, 50*time.Millisecond).Should(BeEquivalentTo(1))
	meetergoFk.RemoveFault(fid)

	g.Eventually(func(g Gomega) {
		regs := w.ownedBy(obj)
		g.Expect(len(regs)).To(Equal(1), "registrations of this resource at meetergo")
		g.Expect(generationAt(string(obj.UID), regs[0].Endpoint)).To(BeEquivalentTo(2))
		g.Expect(w.get("rotated-twice-cut").Status.TokenGeneration).To(BeEquivalentTo(2))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Expect(w.registrations()).To(HaveLen(1))
	g.Expect(w.events("rotated-twice-cut")).NotTo(ContainElement("RegistrationVanished"))
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
