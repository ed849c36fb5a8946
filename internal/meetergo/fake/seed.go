package fake

import (
	"slices"
	"strings"
	"time"
)

// Seed is state to add to a server: companies, their users, credentials and
// webhooks that exist already (as if made in the dashboard).
type Seed struct {
	Companies   []Company     `json:"companies,omitempty"`
	Users       []User        `json:"users,omitempty"`
	Credentials []Credential  `json:"credentials,omitempty"`
	Webhooks    []SeedWebhook `json:"webhooks,omitempty"`
}

// Company is a meetergo company (account).
type Company struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// User is a meetergo user of one company.
type User struct {
	ID         string `json:"id"`
	CompanyID  string `json:"companyId"`
	Email      string `json:"email"`
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
	IsAdmin    bool   `json:"isAdmin,omitempty"`
}

// Credential is a bearer token the server accepts. A token starting with
// "rgo-" is a personal token acting as UserID; any other is a platform key
// that acts for the user named in x-meetergo-api-user-id, who must belong
// to CompanyID, to one of CompanyIDs, or (AnyCompany) to any company.
type Credential struct {
	Token string `json:"token"`
	// UserID owns a personal token.
	UserID string `json:"userId,omitempty"`
	// CompanyID owns a platform key.
	CompanyID string `json:"companyId,omitempty"`
	// CompanyIDs are further companies whose users a platform key may act
	// for (CompanyID may then be empty): one key, several companies.
	CompanyIDs []string `json:"companyIds,omitempty"`
	// AnyCompany lets a platform key act for a user of any company.
	AnyCompany bool `json:"anyCompany,omitempty"`
	// ExpiresAt, if set, is when the credential starts answering 401
	// "API key has expired".
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// NoWebhookPermission makes the webhook routes answer 403, like a
	// personal token without the "Account" permission group.
	NoWebhookPermission bool `json:"noWebhookPermission,omitempty"`
}

// personal reports whether c is a personal token.
func (c Credential) personal() bool { return strings.HasPrefix(c.Token, "rgo-") }

// actsFor reports whether platform key c may act for a user of companyID.
func (c Credential) actsFor(companyID string) bool {
	return c.AnyCompany || (c.CompanyID != "" && c.CompanyID == companyID) || slices.Contains(c.CompanyIDs, companyID)
}

// SeedWebhook is a webhook that exists before the test starts.
type SeedWebhook struct {
	CompanyID string `json:"companyId"`
	WebhookSpec
}

// The ids and credentials of DefaultSeed. All of it is made up.
const (
	SeedCompanyID      = "c0ffee00-0000-4000-8000-00000000c001"
	SeedAdminID        = "a11ce000-0000-4000-8000-00000000a001"
	SeedMemberID       = "a11ce000-0000-4000-8000-00000000a002"
	SeedOtherCompanyID = "c0ffee00-0000-4000-8000-00000000c002"
	SeedOtherUserID    = "a11ce000-0000-4000-8000-00000000b001"

	// SeedAdminToken is a personal token of the company's admin.
	SeedAdminToken = "rgo-fake-admin-6b1f2c3d4e5f60718293a4b5c6d7e8f9"
	// SeedMemberToken is a personal token of a non-admin member.
	SeedMemberToken = "rgo-fake-member-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	// SeedPlatformKey is a platform key of the company; send SeedAdminID or
	// SeedMemberID as x-meetergo-api-user-id with it.
	SeedPlatformKey = "ak_live:4a1b7c2d-0000-4000-8000-00000000f001:fakeplatformsecret9f8e7d6c5b4a"
	// SeedOtherToken is a personal token of a user of another company.
	SeedOtherToken = "rgo-fake-other-13579bdf2468ace013579bdf2468ace0"
	// SeedMultiCompanyPlatformKey is a platform key that acts for users of
	// both companies of DefaultSeed (SeedAdminID, SeedMemberID and
	// SeedOtherUserID). It is not in DefaultSeed: add
	// MultiCompanyCredential() to a server to use it.
	SeedMultiCompanyPlatformKey = "ak_live:4a1b7c2d-0000-4000-8000-00000000f002:fakemulticompanysecret5e6f7a8b9c0d"
)

// MultiCompanyCredential is SeedMultiCompanyPlatformKey, bound to both
// companies of DefaultSeed: one key, two user ids, two identities.
func MultiCompanyCredential() Credential {
	return Credential{Token: SeedMultiCompanyPlatformKey, CompanyIDs: []string{SeedCompanyID, SeedOtherCompanyID}}
}

// DefaultSeed is a small world: a company with an admin, a member, a
// personal token for each and a platform key, and a second company with
// one user and token. The people are from the fake cast (PersonalData).
func DefaultSeed() Seed {
	admin, member, other := hosts[0], hosts[1], hosts[2]
	return Seed{
		Companies: []Company{
			{ID: SeedCompanyID, Name: "Mustermann Consulting GmbH (fake)"},
			{ID: SeedOtherCompanyID, Name: "Other Company (fake)"},
		},
		Users: []User{
			admin.user(SeedAdminID, SeedCompanyID, true),
			member.user(SeedMemberID, SeedCompanyID, false),
			other.user(SeedOtherUserID, SeedOtherCompanyID, true),
		},
		Credentials: []Credential{
			{Token: SeedAdminToken, UserID: SeedAdminID},
			{Token: SeedMemberToken, UserID: SeedMemberID},
			{Token: SeedPlatformKey, CompanyID: SeedCompanyID},
			{Token: SeedOtherToken, UserID: SeedOtherUserID},
		},
	}
}
