package meetergo_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, fake.Options{}, func(o *meetergo.Options) { o.Registerer = reg })
	mustInject(t, e.srv, fake.Fault{Method: "GET", Times: 1, Status: 429})
	mustInject(t, e.srv, fake.Fault{Method: "DELETE", Times: 1, Drop: true})
	ctx := ctxFor(t)
	if _, err := e.client.ListWebhooks(ctx, adminToken); err != nil {
		t.Fatal(err)
	}
	_ = e.client.DeleteWebhook(ctx, adminToken, "5")
	_, _ = e.client.UpdateWebhook(ctx, adminToken, "5", meetergo.WebhookInput{Description: "x"})

	want := `
# HELP meetergo_operator_api_rate_limited_total 429 Too Many Requests answers received from meetergo, by operation.
# TYPE meetergo_operator_api_rate_limited_total counter
meetergo_operator_api_rate_limited_total{operation="list"} 1
# HELP meetergo_operator_api_requests_total HTTP requests sent to meetergo, by operation and status class (2xx, 4xx, 5xx, or error when no answer came).
# TYPE meetergo_operator_api_requests_total counter
meetergo_operator_api_requests_total{code="2xx",operation="list"} 1
meetergo_operator_api_requests_total{code="4xx",operation="list"} 1
meetergo_operator_api_requests_total{code="4xx",operation="update"} 1
meetergo_operator_api_requests_total{code="error",operation="delete"} 1
# HELP meetergo_operator_api_retries_total Requests to meetergo sent again after a 429, a 5xx or a transport failure, by operation.
# TYPE meetergo_operator_api_retries_total counter
meetergo_operator_api_retries_total{operation="list"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"meetergo_operator_api_rate_limited_total", "meetergo_operator_api_requests_total", "meetergo_operator_api_retries_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "meetergo_operator_api_request_duration_seconds", "meetergo_operator_api_rate_limit_wait_seconds"); n != 6 {
		t.Fatalf("want a latency and a wait series for each of 3 operations, got %d series", n)
	}
	families, _ := reg.Gather()
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "operation" && l.GetName() != "code" && l.GetName() != "key" {
					t.Errorf("unexpected label %s on %s", l.GetName(), mf.GetName())
				}
			}
		}
	}

	// A second client can register on the same registry and shares the series.
	if _, err := meetergo.NewHTTPClient(meetergo.Options{BaseURL: e.url, Registerer: reg}); err != nil {
		t.Fatalf("second client: %v", err)
	}
}
