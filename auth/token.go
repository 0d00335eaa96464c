package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// SessionCookie is the name of the dashboard's login cookie.
const SessionCookie = "llmscope_session"

// SessionLifetime is how long a login lasts.
const SessionLifetime = 12 * time.Hour

// HashToken returns the SHA-256 of token: the form in which tokens and keys
// are kept and compared.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// FormatHash returns h as "sha256:<64 hex digits>", the form
// LoadAdminTokenFile and LoadClientKeys read.
func FormatHash(h [32]byte) string { return "sha256:" + hex.EncodeToString(h[:]) }

// ParseHash reads "<64 hex digits>" or "sha256:<64 hex digits>". Its errors
// never repeat s, which may be a token put there by mistake.
func ParseHash(s string) ([32]byte, error) {
	var h [32]byte
	hexs := strings.TrimPrefix(s, "sha256:")
	if len(hexs) != 64 {
		return h, fmt.Errorf("want sha256:<64 hex digits>, got %d characters", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(hexs)); err != nil {
		return h, fmt.Errorf("want sha256:<64 hex digits>, got a character that is not a hex digit")
	}
	return h, nil
}

// LoadAdminTokenFile reads a file holding "sha256:<64 hex digits>", the
// SHA-256 of the admin token (as printf %s "$TOKEN" | sha256sum prints it).
// Surrounding white space is ignored. Errors name the file, never its
// content.
func LoadAdminTokenFile(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, fmt.Errorf("read admin token file: %w", err)
	}
	s := string(bytes.TrimSpace(b))
	if !strings.HasPrefix(s, "sha256:") {
		return [32]byte{}, fmt.Errorf("%s: want sha256:<64 hex digits> (the hash of the token, not the token)", path)
	}
	h, err := ParseHash(s)
	if err != nil {
		return h, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// sessionKey derives the key signing sessions from the admin token's hash
// and a secret: the hash alone is not secret enough (an admin token file
// holds it), so without a configured secret each process draws its own and
// its sessions end when it stops. Gateways given the same secret accept
// each other's sessions; a new token ends all sessions.
func sessionKey(adminHash [32]byte, secret []byte) []byte {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // never fails (crypto/rand)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("llmscope session key v2\x00"))
	m.Write(adminHash[:])
	return m.Sum(nil)
}

// newSession returns a cookie value "<expiry unix>.<base64url HMAC>" valid
// until expiry.
func (g *Guard) newSession(expiry time.Time) string {
	exp := strconv.FormatInt(expiry.Unix(), 10)
	return exp + "." + base64.RawURLEncoding.EncodeToString(g.sessionMAC(exp))
}

func (g *Guard) sessionMAC(exp string) []byte {
	m := hmac.New(sha256.New, g.sessionKey)
	m.Write([]byte(exp))
	return m.Sum(nil)
}

// validSession reports whether v is a session this admin token signed that
// has not expired.
func (g *Guard) validSession(v string) bool {
	exp, sig, ok := strings.Cut(v, ".")
	if !ok || len(exp) == 0 || len(exp) > 19 {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	now := g.now()
	if err != nil || !now.Before(time.Unix(unix, 0)) || time.Unix(unix, 0).After(now.Add(SessionLifetime+time.Minute)) {
		return false // expired, or longer than any session this guard makes
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(mac, g.sessionMAC(exp))
}
