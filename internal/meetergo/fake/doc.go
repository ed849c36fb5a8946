// Package fake is an in-process imitation of the parts of meetergo's API the
// operator uses, for tests and local runs. It is not meetergo: it follows
// the contract in docs/meetergo-client.md as far as that is known, and
// docs/fake-meetergo.md lists where it knowingly guesses or differs.
//
// A Server is an http.Handler. It serves the production routes
// (GET /v4/user/me, GET and POST /webhooks, PATCH and DELETE /webhooks/{id})
// with meetergo's credentials, validation, six-webhook limit, plan wall and
// per-credential rate limit, and it can inject faults (5xx answers, latency,
// hangs, dropped connections, changes applied but answered with a failure).
//
// Everything under /admin/ is fake-only: it needs no credential and lets a
// test look at and change the server's state, inject faults and deliver
// events to the registered endpoints. The same operations are methods on
// Server. Never expose a fake to anything but a test.
package fake
