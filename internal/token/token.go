// Package token derives the secret path token of each MeetergoWebhook's
// receiver URL.
//
// A token is HMAC-SHA256(key, uid "/" generation), truncated to 192 bits and
// base64url-encoded. The key is the operator's own (a Secret in its
// namespace); the resource's UID and its status.tokenGeneration are public.
// So the operator stores no token anywhere: the reconciler and every receiver
// replica derive the same token from the same inputs, a restart changes
// nothing, and rotating means raising the generation.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// KeySize is the size of a generated key in bytes.
const KeySize = 32

// tokenBytes is how much of the HMAC a token keeps: 192 bits, well above the
// 128 bits an unguessable URL needs.
const tokenBytes = 24

// PathPrefix is the receiver path under which tokens are served.
const PathPrefix = "/hooks/"

// Deriver derives tokens with one key.
type Deriver struct{ key []byte }

// NewDeriver returns a Deriver for key, which must hold at least 32 bytes.
func NewDeriver(key []byte) (*Deriver, error) {
	if len(key) < KeySize {
		return nil, errors.New("token key must be at least 32 bytes")
	}
	return &Deriver{key: append([]byte(nil), key...)}, nil
}

// NewKey returns a fresh random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand panics on failure since Go 1.24)
	return k
}

// Token derives the token of the resource with this UID at this rotation
// generation.
func (d *Deriver) Token(uid string, generation int64) string {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte(uid))
	m.Write([]byte{'/'})
	m.Write([]byte(strconv.FormatInt(generation, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:tokenBytes])
}

// Endpoint is the URL meetergo posts to: the receiver's public base URL with
// the token path appended.
func Endpoint(baseURL, tok string) string {
	return strings.TrimRight(baseURL, "/") + PathPrefix + tok
}

// Masked is the endpoint as status shows it: the token replaced by asterisks.
func Masked(baseURL string) string {
	return strings.TrimRight(baseURL, "/") + PathPrefix + "********"
}

// Equal compares two tokens in constant time.
func Equal(a, b string) bool {
	return hmac.Equal([]byte(a), []byte(b))
}
