package fake

import "time"

// The shapes of the documented events. Attendee names are lower-case keys,
// host names camelCase, as in production. Fields the reference marks as
// unknown (cancel, originalStart, the new_employee and form_submission
// bodies) are the fake's best guess.

type bookingPayload struct {
	WebhookType   string      `json:"webhookType"`
	ID            string      `json:"id"`
	Secret        string      `json:"secret"`
	Start         string      `json:"start"`
	End           string      `json:"end"`
	OriginalStart string      `json:"originalStart,omitempty"`
	Location      *string     `json:"location"`
	IsCancelled   bool        `json:"isCancelled"`
	Cancel        *cancelInfo `json:"cancel,omitempty"`
	RescheduledAt *string     `json:"rescheduledAt"`
	MeetingInfo   meetingInfo `json:"meetingInfo"`
	Attendees     []attendee  `json:"attendees"`
	Hosts         []host      `json:"hosts"`
	HostIDs       []string    `json:"hostIds"`
	MeetingType   meetingType `json:"meetingType"`
	MeetingTypeID string      `json:"meetingTypeId"`
	CompanyID     string      `json:"companyId"`
	CreatedAt     string      `json:"createdAt"`
	UpdatedAt     string      `json:"updatedAt"`
}

type cancelInfo struct {
	ActionSource string `json:"actionSource"`
	ActionAt     string `json:"actionAt"`
	ActionBy     string `json:"actionBy"`
	Reason       string `json:"reason"`
}

type meetingInfo struct {
	Channel     string `json:"channel"`
	MeetingLink string `json:"meetingLink"`
}

type attendee struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Firstname string `json:"firstname"`
	Lastname  string `json:"lastname"`
	Fullname  string `json:"fullname"`
	Phone     string `json:"phone"`
	Timezone  string `json:"timezone"`
	Language  string `json:"language"`
}

type host struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
	FullName   string `json:"fullName"`
	Slug       string `json:"slug"`
	Picture    string `json:"picture"`
}

type meetingType struct {
	ID          string            `json:"id"`
	Slug        string            `json:"slug"`
	MeetingInfo meetingTypeInfo   `json:"meetingInfo"`
	Metadata    map[string]string `json:"metadata"`
}

type meetingTypeInfo struct {
	Name     string `json:"name"`
	Duration int    `json:"duration"`
}

const (
	meetingTypeID   = "d0000000-0000-4000-8000-0000000000d1"
	meetingDuration = 30
)

func (e event) booking(metadata map[string]string) bookingPayload {
	a, h := e.attendee(), hosts[0]
	// The appointment is tomorrow at 09:00; a reschedule moves it a day.
	start := time.Date(e.now.Year(), e.now.Month(), e.now.Day()+1, 9, 0, 0, 0, payloadZone)
	created, updated := e.now.Add(-time.Hour).UTC().Format(utcTime), e.now.UTC().Format(utcTime)
	p := bookingPayload{
		WebhookType: e.typ,
		ID:          e.id,
		Secret:      AppointmentSecret(e.id),
		MeetingInfo: meetingInfo{Channel: "google_meet", MeetingLink: "https://meet.example.com/" + digest("meeting", e.id)[:10]},
		Attendees: []attendee{{ID: a.id, Email: a.email, Firstname: a.givenName, Lastname: a.familyName,
			Fullname: a.fullName(), Phone: a.phone, Timezone: a.timezone, Language: a.language}},
		Hosts: []host{{ID: h.id, Email: h.email, GivenName: h.givenName, FamilyName: h.familyName,
			FullName: h.fullName(), Slug: h.slug, Picture: "https://example.org/avatars/" + h.slug + ".png"}},
		HostIDs:       []string{h.id},
		MeetingType:   meetingType{ID: meetingTypeID, Slug: "erstgespraech", MeetingInfo: meetingTypeInfo{Name: "Erstgespräch", Duration: meetingDuration}, Metadata: metadata},
		MeetingTypeID: meetingTypeID,
		CompanyID:     e.companyID,
		CreatedAt:     created,
		UpdatedAt:     updated,
	}
	switch e.typ {
	case "booking_created":
		p.CreatedAt = updated
	case "booking_cancelled":
		p.IsCancelled = true
		p.Cancel = &cancelInfo{ActionSource: "attendee", ActionAt: updated, ActionBy: a.email, Reason: "Terminkonflikt"}
	case "booking_rescheduled":
		p.OriginalStart = start.Format(offsetTime)
		start = start.AddDate(0, 0, 1)
		p.RescheduledAt = &updated
	}
	p.Start = start.Format(offsetTime)
	p.End = start.Add(meetingDuration * time.Minute).Format(offsetTime)
	return p
}

type employeePayload struct {
	WebhookType string            `json:"webhookType"`
	ID          string            `json:"id"`
	Email       string            `json:"email"`
	GivenName   string            `json:"givenName"`
	FamilyName  string            `json:"familyName"`
	FullName    string            `json:"fullName"`
	Slug        string            `json:"slug"`
	Phone       string            `json:"phone"`
	Timezone    string            `json:"timezone"`
	Language    string            `json:"language"`
	IsAdmin     bool              `json:"isAdmin"`
	CompanyID   string            `json:"companyId"`
	CreatedAt   string            `json:"createdAt"`
	UpdatedAt   string            `json:"updatedAt"`
	Metadata    map[string]string `json:"metadata"`
}

func (e event) newEmployee(metadata map[string]string) employeePayload {
	p, at := newEmployee, e.now.UTC().Format(utcTime)
	return employeePayload{WebhookType: e.typ, ID: e.id, Email: p.email, GivenName: p.givenName, FamilyName: p.familyName,
		FullName: p.fullName(), Slug: p.slug, Phone: p.phone, Timezone: p.timezone, Language: p.language,
		CompanyID: e.companyID, CreatedAt: at, UpdatedAt: at, Metadata: metadata}
}

type formPayload struct {
	WebhookType string            `json:"webhookType"`
	ID          string            `json:"id"`
	FormID      string            `json:"formId"`
	Form        form              `json:"form"`
	Answers     []answer          `json:"answers"`
	CompanyID   string            `json:"companyId"`
	CreatedAt   string            `json:"createdAt"`
	Metadata    map[string]string `json:"metadata"`
}

type form struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
	Type string `json:"type"`
}

type answer struct {
	QuestionID string `json:"questionId"`
	Label      string `json:"label"`
	Type       string `json:"type"`
	Value      string `json:"value"`
}

const formID = "f0000000-0000-4000-8000-0000000000f1"

func (e event) formSubmission(metadata map[string]string) formPayload {
	a := e.attendee()
	return formPayload{
		WebhookType: e.typ, ID: e.id, FormID: formID,
		Form: form{ID: formID, Name: "Kontaktformular", Slug: "kontakt", Type: "routing"},
		Answers: []answer{
			{QuestionID: "q1", Label: "Name", Type: "text", Value: a.fullName()},
			{QuestionID: "q2", Label: "E-Mail", Type: "email", Value: a.email},
			{QuestionID: "q3", Label: "Telefon", Type: "phone", Value: a.phone},
			{QuestionID: "q4", Label: "Anliegen", Type: "select", Value: "Beratung"},
		},
		CompanyID: e.companyID, CreatedAt: e.now.UTC().Format(utcTime), Metadata: metadata,
	}
}
