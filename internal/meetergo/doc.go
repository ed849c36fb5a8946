// Package meetergo is the operator's client for the parts of meetergo's API it
// needs: learning who a credential belongs to and managing that company's
// webhook registrations.
//
// The contract it follows is docs/meetergo-client.md. In short:
//
//   - One HTTPClient per process. Every call made with the same credential
//     draws from one token bucket (RequestsPerMinute, Burst), so many
//     reconcilers sharing a credential stay under meetergo's rate limit.
//   - 429 is retried for every method, honouring Retry-After. 5xx answers and
//     transport failures are retried for GET only: a POST, PATCH or DELETE
//     that failed that way may already have been applied, so it comes back as
//     a Transient error and the caller finds out by listing.
//   - Every failure is an *Error with a Reason the caller can act on; the
//     Is* predicates see through wrapping. No error, log line or metric ever
//     contains the credential.
package meetergo
