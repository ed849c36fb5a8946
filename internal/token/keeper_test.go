package token

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Defect 7 (a): the token key Secret deleted while a replica runs comes back
// with the key that replica holds, so a replica started afterwards derives
// the same tokens.
func TestDeletedKeySecretIsRestoredWithTheRunningReplicasKey(t *testing.T) {
	o := newOperator(t)
	key, err := LoadOrCreateKey(t.Context(), o.client, o.ns, secretName)
	if err != nil {
		t.Fatal(err)
	}
	_, before := o.secretKey(t)
	k := o.startKeeper(t, key)
	restores := metricValue(t, "meetergo_operator_token_key_secret_restores_total", nil)

	if err := o.admin.Delete(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 10*time.Second, "the deleted token key Secret is back with the running replica's key", func() error {
		got, s := o.secretKey(t)
		switch {
		case s == nil:
			return errors.New("the Secret does not exist")
		case s.UID == before.UID:
			return errors.New("the Secret is the deleted one still")
		case !bytes.Equal(got, key):
			return errors.New("the Secret holds another key than the running replica's")
		}
		return nil
	})
	t.Logf("restored %s after the deletion", time.Since(start).Round(time.Millisecond))

	// The Keeper counts and logs right after its create returns, which
	// may be after the test sees the Secret.
	eventually(t, 5*time.Second, "the restore is counted and logged", func() error {
		if got := metricValue(t, "meetergo_operator_token_key_secret_restores_total", nil); got != restores+1 {
			return fmt.Errorf("meetergo_operator_token_key_secret_restores_total = %v, want %v", got, restores+1)
		}
		if log := k.log.String(); !strings.Contains(log, "restored") || !strings.Contains(log, o.ns+"/"+secretName) {
			return fmt.Errorf("the log does not say that the Secret %s/%s was restored:\n%s", o.ns, secretName, log)
		}
		return nil
	})
	assertKeyNotIn(t, k.log.String(), key)

	// A replica starting now loads the same key.
	again, err := LoadKey(t.Context(), o.client, KeyOptions{Namespace: o.ns, Name: secretName, LeaseName: leaseName})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, key) {
		t.Error("a replica started after the restore loaded another key")
	}
	if err := k.stopped(); err != errRunning {
		t.Fatalf("the Keeper stopped: %v", err)
	}
}

// liveLease makes the leader election Lease as a leader renewing it does.
func (o *operator) lease(t *testing.T, renewed time.Time) {
	t.Helper()
	create(t, o.admin, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: leaseName},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("meetergo-operator-0_6f1c"),
			LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime:          &metav1.MicroTime{Time: renewed.Add(-time.Minute)},
			RenewTime:            &metav1.MicroTime{Time: renewed},
		},
	})
}

// Defect 7 (b): a replica that starts while the Secret is deleted and a
// live Lease says another replica runs does not race that replica's restore
// with a new key: it waits, and ends with the running replica's key.
//
// The running replica's Keeper is started only once the starting replica
// was seen waiting, as when its watch delivers the deletion late: the
// starting replica is then sure to have found no Secret first.
func TestReplicaStartingWhileTheSecretIsDeletedTakesTheRunningReplicasKey(t *testing.T) {
	o := newOperator(t)
	key, err := LoadOrCreateKey(t.Context(), o.client, o.ns, secretName)
	if err != nil {
		t.Fatal(err)
	}
	o.lease(t, time.Now())
	_, s := o.secretKey(t)
	if err := o.admin.Delete(t.Context(), s); err != nil {
		t.Fatal(err)
	}

	log := &logBuffer{}
	type result struct {
		key []byte
		err error
	}
	started := make(chan result, 1)
	go func() {
		k, err := LoadKey(t.Context(), o.client, KeyOptions{
			Namespace: o.ns, Name: secretName, LeaseName: leaseName,
			RestoreWait: 20 * time.Second, PollInterval: 100 * time.Millisecond, Log: log.logger(),
		})
		started <- result{k, err}
	}()
	var early *result
	eventually(t, 10*time.Second, "the starting replica waits for the running one", func() error {
		select {
		case r := <-started:
			early = &r
			return nil
		default:
		}
		if !strings.Contains(log.String(), "waiting for a running replica to restore it") {
			return errors.New("no wait logged")
		}
		return nil
	})
	if early != nil {
		t.Fatalf("the starting replica did not wait for the running one (err %v); the keys agree: %v", early.err, bytes.Equal(early.key, key))
	}
	waitStart := time.Now()
	k := o.startKeeper(t, key)

	var r result
	select {
	case r = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the starting replica did not finish within 30s")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("the starting replica loaded the key %s after the running replica's Keeper started", time.Since(waitStart).Round(time.Millisecond))
	if !bytes.Equal(r.key, key) {
		t.Fatal("the starting replica holds another key than the running one: events routed to either half get 404")
	}
	if got, _ := o.secretKey(t); !bytes.Equal(got, key) {
		t.Error("the Secret holds another key than the running replica's")
	}
	if !strings.Contains(log.String(), o.ns+"/"+secretName) {
		t.Errorf("the starting replica's log does not name the Secret:\n%s", log)
	}
	assertKeyNotIn(t, log.String()+k.log.String(), key)
	if err := k.stopped(); err != errRunning {
		t.Fatalf("the running replica's Keeper stopped: %v", err)
	}
}

// The other side of (b): without a live Lease (first install, or every
// replica stopped long enough for the Lease to expire, or no Lease at all)
// a starting replica creates the key at once.
func TestReplicaStartingWithoutALiveLeaseCreatesTheKeyAtOnce(t *testing.T) {
	for name, renewed := range map[string]*time.Time{
		"no Lease":      nil,
		"expired Lease": ptr.To(time.Now().Add(-time.Minute)),
	} {
		t.Run(name, func(t *testing.T) {
			o := newOperator(t)
			if renewed != nil {
				o.lease(t, *renewed)
			}
			start := time.Now()
			key, err := LoadKey(t.Context(), o.client, KeyOptions{Namespace: o.ns, Name: secretName, LeaseName: leaseName, RestoreWait: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("creating the key took %s: the replica waited for a restore nobody would do", took)
			}
			if got, _ := o.secretKey(t); !bytes.Equal(got, key) || len(key) < KeySize {
				t.Error("the Secret does not hold the key the replica loaded")
			}
		})
	}
}

// Defect 7 (c): a replica whose key differs from the Secret's does not go on
// silently: its Keeper logs an error naming the Secret (not the key), sets
// meetergo_operator_token_key_secret_mismatch{reason="different"} and stops
// with ErrKeyDiverged, which ends the process; its restart loads the
// Secret's key.
func TestReplicaWithADivergentKeyIsDetectedAndStops(t *testing.T) {
	o := newOperator(t)
	key, err := LoadOrCreateKey(t.Context(), o.client, o.ns, secretName)
	if err != nil {
		t.Fatal(err)
	}
	k := o.startKeeper(t, key)

	other := NewKey()
	_, s := o.secretKey(t)
	s.Data[KeySecretKey] = other
	if err := o.admin.Update(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.done:
		err := k.err
		if !errors.Is(err, ErrKeyDiverged) {
			t.Fatalf("the Keeper stopped with %v, want ErrKeyDiverged", err)
		}
		if !strings.Contains(err.Error(), o.ns+"/"+secretName) {
			t.Errorf("the error does not name the Secret: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a replica holding another key than the Secret's went on for 10s")
	}
	if v := metricValue(t, "meetergo_operator_token_key_secret_mismatch", map[string]string{"reason": MismatchDifferent}); v != 1 {
		t.Errorf(`meetergo_operator_token_key_secret_mismatch{reason="different"} = %v, want 1`, v)
	}
	log := k.log.String()
	if !strings.Contains(log, "holds another key than the one this replica derives") || !strings.Contains(log, o.ns+"/"+secretName) {
		t.Errorf("no error naming the Secret in the log:\n%s", log)
	}
	assertKeyNotIn(t, log, key, other)

	// The restart converges on the Secret's key.
	again, err := LoadKey(t.Context(), o.client, KeyOptions{Namespace: o.ns, Name: secretName})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, other) {
		t.Error("the restarted replica did not load the Secret's key")
	}
}

// A Secret whose key is too short is no key to converge on (no replica
// could start with it): the running replica reports it and keeps its key,
// and the report clears once the Secret is fixed.
func TestUnusableKeyInTheSecretIsReportedAndTheReplicaKeepsItsKey(t *testing.T) {
	o := newOperator(t)
	key, err := LoadOrCreateKey(t.Context(), o.client, o.ns, secretName)
	if err != nil {
		t.Fatal(err)
	}
	k := o.startKeeper(t, key)
	unusable := map[string]string{"reason": MismatchUnusable}

	set := func(v []byte) {
		t.Helper()
		_, s := o.secretKey(t)
		s.Data[KeySecretKey] = v
		if err := o.admin.Update(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	set([]byte("short"))
	eventually(t, 10*time.Second, "the unusable key is reported", func() error {
		if v := metricValue(t, "meetergo_operator_token_key_secret_mismatch", unusable); v != 1 {
			return fmt.Errorf(`meetergo_operator_token_key_secret_mismatch{reason="unusable"} = %v`, v)
		}
		return nil
	})
	if !strings.Contains(k.log.String(), "unusable key") {
		t.Errorf("the log does not say the key is unusable:\n%s", k.log)
	}
	if err := k.stopped(); err != errRunning {
		t.Fatalf("the Keeper stopped: %v", err)
	}
	set(key)
	eventually(t, 10*time.Second, "the report clears once the Secret holds the key again", func() error {
		if v := metricValue(t, "meetergo_operator_token_key_secret_mismatch", unusable); v != 0 {
			return fmt.Errorf(`meetergo_operator_token_key_secret_mismatch{reason="unusable"} = %v`, v)
		}
		return nil
	})
	assertKeyNotIn(t, k.log.String(), key)
}
