package meetergo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
)

// personalTokenPrefix starts every personal access token, platformKeyPrefix
// every platform API key.
const (
	personalTokenPrefix = "rgo-"
	platformKeyPrefix   = "ak_live:"
)

// CredentialKind tells the kinds of meetergo credential apart.
type CredentialKind string

const (
	// PersonalToken is a personal access token ("rgo-..."). It acts as its
	// owner; the client never sends a user header with it.
	PersonalToken CredentialKind = "PersonalToken"
	// PlatformKey is a platform API key ("ak_live:<uuid>:<secret>"). It acts
	// for the user named by Credential.UserID, sent as x-meetergo-api-user-id.
	PlatformKey CredentialKind = "PlatformKey"
	// UnsupportedCredential is any other token. meetergo would take it for
	// a short-lived login token (a session), which expires within hours and
	// cannot be renewed by the operator; the client refuses it before
	// sending anything (ReasonUnsupportedCredential).
	UnsupportedCredential CredentialKind = "UnsupportedCredential"
)

// Credential is what the client authenticates with. Token is the bearer
// value: a personal token ("rgo-...") or a platform key
// ("ak_live:<uuid>:<secret>"). UserID is the meetergo user a platform key acts
// for; it is required for platform keys and ignored for personal tokens.
//
// Formatting a Credential with any fmt verb, logging it through logr or slog,
// or encoding it as JSON never reveals the token.
type Credential struct {
	Token  string
	UserID string
}

// Kind reports whether c is a personal token ("rgo-..."), a platform key
// ("ak_live:...") or neither (UnsupportedCredential, also for an empty
// token). The prefixes are matched exactly, case and all.
func (c Credential) Kind() CredentialKind {
	switch {
	case strings.HasPrefix(c.Token, personalTokenPrefix):
		return PersonalToken
	case strings.HasPrefix(c.Token, platformKeyPrefix):
		return PlatformKey
	}
	return UnsupportedCredential
}

// Fingerprint is a short hex digest of the token: stable, safe to log and
// to use as a map key, and useless for recovering the token.
func (c Credential) Fingerprint() string {
	sum := sha256.Sum256([]byte(c.Token))
	return hex.EncodeToString(sum[:8])
}

// String describes the credential without revealing the token.
func (c Credential) String() string {
	switch {
	case c.Token == "":
		return "empty credential"
	case c.Kind() == PersonalToken:
		return personalTokenPrefix + "…(redacted)"
	case c.Kind() == UnsupportedCredential:
		return "unsupported credential (redacted)"
	case c.UserID == "":
		return "platform key (redacted) without user id"
	default:
		return "platform key (redacted) for user " + c.UserID
	}
}

// GoString makes %#v as safe as %v.
func (c Credential) GoString() string { return "meetergo.Credential(" + c.String() + ")" }

// Format writes String for every verb, so no verb (%v, %+v, %s, %q, %x, ...)
// prints the token.
func (c Credential) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(c.GoString()))
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// MarshalLog keeps logr from printing the token (logr.Marshaler).
func (c Credential) MarshalLog() any { return c.String() }

// LogValue keeps slog from printing the token (slog.LogValuer).
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes the redacted description, never the token, so a
// Credential that ends up in a JSON log or status is harmless.
func (c Credential) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", c.String())), nil }

// secrets returns the strings that must never appear in output: the token
// and, for a platform key, its secret part.
func (c Credential) secrets() []string {
	if c.Token == "" {
		return nil
	}
	out := []string{c.Token}
	if i := strings.LastIndexByte(c.Token, ':'); i >= 0 && i < len(c.Token)-1 {
		out = append(out, c.Token[i+1:])
	}
	return out
}

// redact replaces every secret of c in s.
func (c Credential) redact(s string) string {
	for _, secret := range c.secrets() {
		s = strings.ReplaceAll(s, secret, "(redacted)")
	}
	return s
}

// check refuses, before any request is made, a credential that cannot work.
func (c Credential) check(op operation) error {
	switch {
	case c.Token == "":
		return localError(op, ReasonUnauthorized, "the credential has no token")
	case !validHeaderValue(c.Token):
		return localError(op, ReasonUnauthorized, "the token contains characters not allowed in an HTTP header")
	case c.Kind() == UnsupportedCredential:
		return localError(op, ReasonUnsupportedCredential, unsupportedMessage)
	case c.Kind() == PersonalToken:
		return nil
	case c.UserID == "":
		return localError(op, ReasonMissingUserID, "a platform key needs the id of the user it acts for (x-meetergo-api-user-id)")
	case !validHeaderValue(c.UserID):
		return localError(op, ReasonInvalid, "the user id contains characters not allowed in an HTTP header")
	}
	return nil
}

// unsupportedMessage says which kinds of credential work; it never quotes
// the token.
const unsupportedMessage = "the token is neither a personal access token (rgo-…) nor a platform API key (ak_live:…); " +
	"only these two kinds work (meetergo would take any other shape for a short-lived login token)"

// validHeaderValue accepts printable ASCII without spaces, which covers both
// kinds of token and uuids and rules out header injection.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
