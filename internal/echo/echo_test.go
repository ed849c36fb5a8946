package echo

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
)

// sign is an independent Standard Webhooks signer, as the spec describes it.
func sign(secret, id, ts string, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestRecordsAndVerifies(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	tg := &Target{Secret: secret}
	srv := httptest.NewServer(tg)
	defer srv.Close()
	body := []byte(`{"webhookType":"booking_created"}`)
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/hook", bytes.NewReader(body))
		req.Header.Set("webhook-id", "msg_1")
		req.Header.Set("webhook-timestamp", "1700000000")
		req.Header.Set("X-Meetergo-Event", "booking_created")
		if sig != "" {
			req.Header.Set("webhook-signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := sign(secret, "msg_1", "1700000000", body)
	post("v1,bm90IGl0 " + good) // a rotated secret's signature first, then the right one
	post("v1,bm90IGl0")
	tg.FailNext(503)
	if code := post(good); code != 503 {
		t.Fatalf("FailNext: got %d", code)
	}
	d := tg.Deliveries()
	if len(d) != 2 || !d[0].Valid || d[1].Valid || !d[1].Signed || !bytes.Equal(d[0].Body, body) || d[0].EventType != "booking_created" {
		t.Fatalf("deliveries: %+v", d)
	}
}
