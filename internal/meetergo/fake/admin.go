package fake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// adminRoutes is the fake-only admin API. It needs no credential. Tokens
// are shown masked, delivery endpoints without their path; registered
// endpoints are shown whole, as meetergo's dashboard shows them.
func (s *Server) adminRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/webhooks", s.adminListWebhooks)
	mux.HandleFunc("POST /admin/webhooks", s.adminAddWebhook)
	mux.HandleFunc("PATCH /admin/webhooks/{id}", s.adminEditWebhook)
	mux.HandleFunc("DELETE /admin/webhooks/{id}", s.adminDeleteWebhook)
	mux.HandleFunc("POST /admin/webhooks/{id}/disable", s.adminDisableWebhook)
	mux.HandleFunc("POST /admin/webhooks/{id}/enable", s.adminEnableWebhook)
	mux.HandleFunc("POST /admin/webhooks/{id}/deliver", s.adminDeliverRaw)
	mux.HandleFunc("POST /admin/seed", s.adminSeed)
	mux.HandleFunc("GET /admin/settings", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Settings()) })
	mux.HandleFunc("PATCH /admin/settings", s.adminPatchSettings)
	mux.HandleFunc("GET /admin/counts", s.adminCounts)
	mux.HandleFunc("DELETE /admin/counts", func(w http.ResponseWriter, _ *http.Request) { s.ResetCounts(); w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /admin/requests", s.adminRequests)
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Faults()) })
	mux.HandleFunc("POST /admin/faults", s.adminInjectFault)
	mux.HandleFunc("DELETE /admin/faults", func(w http.ResponseWriter, _ *http.Request) { s.ClearFaults(); w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("DELETE /admin/faults/{id}", s.adminRemoveFault)
	mux.HandleFunc("POST /admin/deliver", s.adminDeliver)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) { writeError(w, noRoute(r)) })
	return mux
}

// adminListWebhooks answers {"<companyId>": [webhook, ...]} for every
// company, including those without webhooks.
func (s *Server) adminListWebhooks(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make(map[string][]Webhook, len(s.companies))
	for id := range s.companies {
		out[id] = []Webhook{}
	}
	for _, wh := range s.companyWebhooks("") {
		out[wh.CompanyID] = append(out[wh.CompanyID], wh)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminAddWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CompanyID string `json:"companyId"`
		WebhookSpec
	}
	if !readJSON(w, r, &in) {
		return
	}
	wh, err := s.AddExternalWebhook(in.CompanyID, in.WebhookSpec)
	respond(w, http.StatusCreated, wh, err)
}

func (s *Server) adminEditWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := webhookID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var change WebhookChange
	if readJSON(w, r, &change) {
		wh, err := s.EditWebhook(id, change)
		respond(w, http.StatusOK, wh, err)
	}
}

func (s *Server) adminDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := webhookID(r)
	if err == nil {
		err = s.DeleteWebhook(id)
	}
	respond(w, http.StatusNoContent, nil, err)
}

// adminDisableWebhook marks a webhook disabled; the optional body
// {"field": "active"|"enabled"|"isActive"|"disabledAt"} chooses how the
// API shows it ("active" if absent).
func (s *Server) adminDisableWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := webhookID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var in struct {
		Field string `json:"field"`
	}
	if readOptionalJSON(w, r, &in) {
		wh, err := s.DisableWebhook(id, in.Field)
		respond(w, http.StatusOK, wh, err)
	}
}

func (s *Server) adminEnableWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := webhookID(r)
	if err == nil {
		var wh Webhook
		wh, err = s.EnableWebhook(id)
		if err == nil {
			writeJSON(w, http.StatusOK, wh)
			return
		}
	}
	writeError(w, err)
}

// maxRawDeliveryBytes bounds a raw delivery: room for bodies beyond a
// receiver's limit (1 MiB by default), to test its 413.
const maxRawDeliveryBytes = 16 << 20

// adminDeliverRaw POSTs the request's body verbatim to the webhook, with
// the request's Content-Type (application/json if none), and answers the
// result like /admin/deliver.
func (s *Server) adminDeliverRaw(w http.ResponseWriter, r *http.Request) {
	id, err := webhookID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRawDeliveryBytes))
	if err != nil {
		writeError(w, newError(http.StatusRequestEntityTooLarge, "request entity too large"))
		return
	}
	res, err := s.DeliverRaw(r.Context(), id, body, r.Header.Get("Content-Type"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": []deliveryJSON{deliveryResultJSON(res)}})
}

func (s *Server) adminSeed(w http.ResponseWriter, r *http.Request) {
	var seed Seed
	if readJSON(w, r, &seed) {
		err := s.AddSeed(seed)
		if err != nil {
			err = newError(http.StatusBadRequest, err.Error())
		}
		respond(w, http.StatusNoContent, nil, err)
	}
}

// adminPatchSettings changes only the fields present in the body.
func (s *Server) adminPatchSettings(w http.ResponseWriter, r *http.Request) {
	v := s.Settings()
	if readJSON(w, r, &v) {
		if err := checkIDField(v.PayloadIDField); err != nil {
			writeError(w, newError(http.StatusBadRequest, err.Error()))
			return
		}
		s.SetSettings(v)
		writeJSON(w, http.StatusOK, s.Settings())
	}
}

func (s *Server) adminCounts(w http.ResponseWriter, _ *http.Request) {
	counts := s.Counts()
	for i := range counts {
		counts[i].Credential = maskToken(counts[i].Credential)
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": s.Count("", "", ""), "counts": counts})
}

func (s *Server) adminRequests(w http.ResponseWriter, _ *http.Request) {
	recs := s.Requests()
	for i := range recs {
		recs[i].Credential = maskToken(recs[i].Credential)
	}
	writeJSON(w, http.StatusOK, recs)
}

func (s *Server) adminInjectFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if !readJSON(w, r, &f) {
		return
	}
	id, err := s.InjectFault(f)
	if err != nil {
		err = newError(http.StatusBadRequest, err.Error())
	}
	respond(w, http.StatusCreated, map[string]int{"id": id}, err)
}

func (s *Server) adminRemoveFault(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeError(w, newError(http.StatusNotFound, "Fault not found"))
		return
	}
	s.RemoveFault(id)
	w.WriteHeader(http.StatusNoContent)
}

// deliveryJSON is a DeliveryResult as the admin API shows it.
type deliveryJSON struct {
	WebhookID     int64  `json:"webhookId"`
	CompanyID     string `json:"companyId"`
	Endpoint      string `json:"endpoint"`
	AppointmentID string `json:"appointmentId"`
	Attempt       int    `json:"attempt"`
	StatusCode    int    `json:"statusCode"`
	Error         string `json:"error,omitempty"`
	Bytes         int    `json:"bytes"`
}

func (s *Server) adminDeliver(w http.ResponseWriter, r *http.Request) {
	var in struct {
		EventType string `json:"eventType"`
		DeliverOptions
	}
	if !readJSON(w, r, &in) {
		return
	}
	results, err := s.Deliver(r.Context(), in.EventType, in.DeliverOptions)
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, err.Error()))
		return
	}
	out := make([]deliveryJSON, 0, len(results))
	for _, res := range results {
		out = append(out, deliveryResultJSON(res))
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// deliveryResultJSON shows res with the endpoint's path (the receiver's
// token) masked, also inside the error text.
func deliveryResultJSON(res DeliveryResult) deliveryJSON {
	masked := maskEndpoint(res.Endpoint)
	d := deliveryJSON{WebhookID: res.WebhookID, CompanyID: res.CompanyID, Endpoint: masked,
		AppointmentID: res.AppointmentID, Attempt: res.Attempt, StatusCode: res.StatusCode, Bytes: len(res.Body)}
	if res.Err != nil {
		d.Error = strings.ReplaceAll(res.Err.Error(), res.Endpoint, masked)
	}
	return d
}

// readJSON decodes the body into v, or answers 400 and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(v)
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, "invalid JSON body: "+err.Error()))
		return false
	}
	return true
}

// readOptionalJSON is readJSON for a body that may be empty.
func readOptionalJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) {
		writeError(w, newError(http.StatusBadRequest, "invalid JSON body: "+err.Error()))
		return false
	}
	return true
}

// respond writes v with status, or err.
func respond(w http.ResponseWriter, status int, v any, err error) {
	switch {
	case err != nil:
		writeError(w, err)
	case v == nil:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, v)
	}
}

// maskToken shows a token's kind and a digest: "rgo-…3f2a1b0c".
func maskToken(token string) string {
	if token == "" {
		return ""
	}
	kind, _, _ := strings.Cut(token, ":")
	if strings.HasPrefix(token, "rgo-") || len(kind) > 8 {
		kind = token[:min(len(token), 4)]
	}
	sum := sha256.Sum256([]byte(token))
	return kind + "…" + hex.EncodeToString(sum[:4])
}

// maskEndpoint keeps an endpoint's scheme and host and hides the rest,
// where the receiver's token is.
func maskEndpoint(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "(masked)"
	}
	return u.Scheme + "://" + u.Host + "/…(masked)"
}
