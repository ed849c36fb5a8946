package fake

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Headers the API reads.
const (
	userIDHeader = "x-meetergo-api-user-id"
	maxBodyBytes = 1 << 20
	unknownRoute = "(no route)"
)

// apiRoutes are the production routes. Anything else answers NestJS's 404
// ("Cannot GET /webhooks/1": there is no GET of one webhook).
func (s *Server) apiRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v4/user/me", s.authed(false, s.handleMe))
	mux.HandleFunc("GET /webhooks", s.authed(true, s.handleList))
	mux.HandleFunc("POST /webhooks", s.authed(true, s.handleCreate))
	mux.HandleFunc("PATCH /webhooks/{id}", s.authed(true, s.handleUpdate))
	mux.HandleFunc("DELETE /webhooks/{id}", s.authed(true, s.handleDelete))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeError(w, noRoute(r)) })
	return mux
}

// caller is who a request acts as.
type caller struct {
	user User
	cred Credential
}

// authed authenticates the request before h; webhook routes also check the
// credential's permission and the plan wall.
func (s *Server) authed(webhookRoute bool, h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		c, err := s.authenticate(r, webhookRoute)
		s.mu.Unlock()
		if err != nil {
			writeError(w, err)
			return
		}
		h(w, r, c)
	}
}

// authenticate resolves the bearer token and user header the way the
// reference describes. s.mu must be held.
func (s *Server) authenticate(r *http.Request, webhookRoute bool) (caller, *apiError) {
	token := bearerToken(r)
	if token == "" {
		return caller{}, newError(http.StatusUnauthorized, "Unauthorized")
	}
	cred, ok := s.creds[token]
	switch {
	case !ok:
		return caller{}, newError(http.StatusUnauthorized, MsgInvalidKey)
	case !cred.ExpiresAt.IsZero() && !time.Now().Before(cred.ExpiresAt):
		return caller{}, newError(http.StatusUnauthorized, MsgExpiredKey)
	}
	named, sent := r.Header.Get(userIDHeader), len(r.Header.Values(userIDHeader)) > 0
	var user User
	if cred.personal() {
		user = s.users[cred.UserID]
		if sent && named != user.ID {
			return caller{}, newError(http.StatusForbidden, MsgForbidden)
		}
	} else {
		if named == "" {
			return caller{}, newError(http.StatusBadRequest, MsgMissingUserHeader)
		}
		if user, ok = s.users[named]; !ok || !cred.actsFor(user.CompanyID) {
			return caller{}, newError(http.StatusForbidden, MsgForbidden)
		}
	}
	switch {
	case webhookRoute && cred.NoWebhookPermission:
		return caller{}, newError(http.StatusForbidden, MsgNoPermission)
	case webhookRoute && s.settings.PlanWall,
		webhookRoute && s.settings.PlanWallOnCreate && r.Method == http.MethodPost:
		return caller{}, planLimitError(s.settings.PlanWallStatus)
	}
	return caller{user: user, cred: cred}, nil
}

func bearerToken(r *http.Request) string {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(token)
}

// handleMe answers GET /v4/user/me with the user; User's JSON form is
// meetergo's (isAdmin only for admins).
func (s *Server) handleMe(w http.ResponseWriter, _ *http.Request, c caller) {
	writeJSON(w, http.StatusOK, c.user)
}

// webhookJSON is the webhook object on the API routes: id a JSON number,
// description null when empty, no Source. A disabled webhook carries the
// one field its DisabledBy names; an enabled one none of them.
type webhookJSON struct {
	ID          int64    `json:"id"`
	Endpoint    string   `json:"endpoint"`
	Description *string  `json:"description"`
	EventTypes  []string `json:"eventTypes"`
	CompanyID   string   `json:"companyId"`
	CreatedAt   string   `json:"createdAt"`
	Active      *bool    `json:"active,omitempty"`
	Enabled     *bool    `json:"enabled,omitempty"`
	IsActive    *bool    `json:"isActive,omitempty"`
	DisabledAt  *string  `json:"disabledAt,omitempty"`
}

const jsonTime = "2006-01-02T15:04:05.000Z07:00"

func toJSON(w Webhook) webhookJSON {
	out := webhookJSON{ID: w.ID, Endpoint: w.Endpoint, EventTypes: w.EventTypes, CompanyID: w.CompanyID,
		CreatedAt: w.CreatedAt.Format(jsonTime)}
	if w.Description != "" {
		out.Description = &w.Description
	}
	off := false
	switch w.DisabledBy {
	case DisabledByActive:
		out.Active = &off
	case DisabledByEnabled:
		out.Enabled = &off
	case DisabledByIsActive:
		out.IsActive = &off
	case DisabledByDisabledAt:
		at := w.DisabledAt.Format(jsonTime)
		out.DisabledAt = &at
	}
	return out
}

// handleList answers the company's webhooks: a bare array, or wrapped in
// an object under Settings.ListShape.
func (s *Server) handleList(w http.ResponseWriter, _ *http.Request, c caller) {
	s.mu.Lock()
	list := s.companyWebhooks(c.user.CompanyID)
	shape := s.settings.ListShape
	s.mu.Unlock()
	out := make([]webhookJSON, 0, len(list))
	for _, wh := range list {
		out = append(out, toJSON(wh))
	}
	if shape != "" {
		writeJSON(w, http.StatusOK, map[string]any{shape: out})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, c caller) {
	change, err := readChange(r)
	if err == nil {
		s.mu.Lock()
		var wh Webhook
		wh, err = s.createWebhook(c.user.CompanyID, change, sourceAPI)
		s.mu.Unlock()
		if err == nil {
			writeJSON(w, http.StatusCreated, toJSON(wh))
			return
		}
	}
	writeError(w, err)
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, c caller) {
	id, err := webhookID(r)
	var change WebhookChange
	if err == nil {
		change, err = readChange(r)
	}
	if err == nil {
		s.mu.Lock()
		var wh Webhook
		wh, err = s.updateWebhook(c.user.CompanyID, id, change)
		s.mu.Unlock()
		if err == nil {
			writeJSON(w, http.StatusOK, toJSON(wh))
			return
		}
	}
	writeError(w, err)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, c caller) {
	id, err := webhookID(r)
	if err == nil {
		s.mu.Lock()
		err = s.deleteWebhook(c.user.CompanyID, id)
		s.mu.Unlock()
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookID reads {id}; anything but a number is an unknown webhook.
func webhookID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, webhookNotFound()
	}
	return id, nil
}

// readChange reads a create or update body strictly: a JSON object with
// only endpoint, description and eventTypes, of the right types. Unknown
// properties are refused (forbidNonWhitelisted), as the reference leaves
// open whether production drops or refuses them.
func readChange(r *http.Request) (WebhookChange, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		return WebhookChange{}, newError(http.StatusRequestEntityTooLarge, "request entity too large")
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil || raw == nil {
		return WebhookChange{}, newError(http.StatusBadRequest, "the request body must be a JSON object")
	}
	var c WebhookChange
	var problems []fieldError
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		var bad bool
		switch k {
		case "endpoint":
			bad = json.Unmarshal(raw[k], &c.Endpoint) != nil
		case "description":
			bad = json.Unmarshal(raw[k], &c.Description) != nil
		case "eventTypes":
			bad = json.Unmarshal(raw[k], &c.EventTypes) != nil
		default:
			problems = append(problems, fieldError{k, "property " + k + " should not exist"})
			continue
		}
		if bad {
			problems = append(problems, fieldError{k, k + " has the wrong type"})
		}
	}
	if len(problems) > 0 {
		return WebhookChange{}, validationError(problems)
	}
	return c, nil
}
