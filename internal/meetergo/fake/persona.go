package fake

import (
	"slices"
	"strings"
)

// SecretPrefix starts every appointment secret the fake puts in a payload,
// so a test can look for leaked secrets by this prefix alone.
const SecretPrefix = "fake-appointment-secret-"

// person is one member of the fake cast. Every e-mail address is on a
// domain reserved for examples and every phone number is in the range
// 555-0100..0199 reserved for fiction.
type person struct {
	id, givenName, familyName, email, phone, timezone, language, slug string
}

func (p person) fullName() string { return p.givenName + " " + p.familyName }

func (p person) user(id, companyID string, admin bool) User {
	return User{ID: id, CompanyID: companyID, Email: p.email, GivenName: p.givenName, FamilyName: p.familyName, IsAdmin: admin}
}

// attendees book appointments; hosts are the company's users; newEmployee
// joins the company in new_employee events.
var (
	attendees = []person{
		{id: "e0000000-0000-4000-8000-000000000001", givenName: "Erikalotte", familyName: "Mustermann", email: "erikalotte.mustermann@example.com", phone: "+1 202 555 0143", timezone: "Europe/Berlin", language: "de"},
		{id: "e0000000-0000-4000-8000-000000000002", givenName: "Johnny", familyName: "Fakerson", email: "johnny.fakerson@example.net", phone: "+1 202 555 0178", timezone: "America/New_York", language: "en"},
		{id: "e0000000-0000-4000-8000-000000000003", givenName: "Juanita", familyName: "Ficticia", email: "juanita.ficticia@example.org", phone: "+1 312 555 0122", timezone: "Europe/Madrid", language: "es"},
	}
	hosts = []person{
		{id: SeedAdminID, givenName: "Maximilian", familyName: "Beispielmann", email: "max.beispielmann@example.org", phone: "+1 202 555 0101", slug: "max-beispielmann"},
		{id: SeedMemberID, givenName: "Annegret", familyName: "Probewitz", email: "annegret.probewitz@example.org", phone: "+1 202 555 0102", slug: "annegret-probewitz"},
		{id: SeedOtherUserID, givenName: "Ottokar", familyName: "Normalverbraucher", email: "ottokar.normalverbraucher@example.com", phone: "+1 202 555 0103", slug: "ottokar-normalverbraucher"},
	}
	newEmployee = person{id: "e0000000-0000-4000-8000-0000000000e1", givenName: "Lenchen", familyName: "Neuanfang", email: "lenchen.neuanfang@example.org", phone: "+1 202 555 0199", timezone: "Europe/Berlin", language: "de", slug: "lenchen-neuanfang"}
)

// PersonalData returns every piece of personal data the fake ever puts in
// a payload or a /v4/user/me answer: names (given, family and full, as
// written and lower-cased), e-mail addresses, phone numbers, and
// SecretPrefix, which starts every appointment secret. A test can scan
// logs, Kubernetes Events, conditions or metrics for each string to prove
// none leaked. The strings are long enough not to occur by chance.
func PersonalData() []string {
	var out []string
	for _, p := range slices.Concat(attendees, hosts, []person{newEmployee}) {
		out = append(out, p.givenName, p.familyName, p.fullName(), strings.ToLower(p.fullName()), p.email, p.phone)
	}
	out = append(out, SecretPrefix)
	slices.Sort(out)
	return slices.Compact(out)
}
