package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"llmscope/auth"
)

// secureOptions are serve's options deciding who may use it and how much
// any client may take of it.
type secureOptions struct {
	adminToken, adminTokenFile, clientKeys, passProviderKeys *option
	allowedHosts, allowedOrigins, insecure                   *option
	maxInflight, maxConns, maxBuffered, bodyTimeout          *option
	tlsCert, tlsKey                                          *option
}

func newSecureOptions(s *settings) *secureOptions {
	return &secureOptions{
		adminToken:       s.str("admin-token", "LLMSCOPE_ADMIN_TOKEN", "", "token protecting /api/*, the dashboard (login page) and /metrics (Authorization: Bearer)"),
		adminTokenFile:   s.str("admin-token-file", "LLMSCOPE_ADMIN_TOKEN_FILE", "", "file holding sha256:<hex> of the admin token (instead of --admin-token)"),
		clientKeys:       s.str("client-keys", "LLMSCOPE_CLIENT_KEYS", "", "YAML file of hashed client keys for /v1/* (keys: [{name, sha256}]); the key's name is recorded as the call's user"),
		passProviderKeys: s.boolean("pass-provider-keys", "LLMSCOPE_PASS_PROVIDER_KEYS", false, "let /v1 clients use their own provider key (sent upstream as is) instead of a client key"),
		allowedHosts:     s.str("allowed-hosts", "LLMSCOPE_ALLOWED_HOSTS", "", "Host header values accepted, comma-separated (* for any; default: loopback names, plus the listen host)"),
		allowedOrigins:   s.str("allowed-origins", "LLMSCOPE_ALLOWED_ORIGINS", "", "browser origins (scheme://host[:port]) allowed besides the gateway's own, comma-separated"),
		insecure:         s.boolean("insecure", "LLMSCOPE_INSECURE", false, "allow a non-loopback --addr without authentication (anyone who reaches it reads the calls and spends the upstream key)"),
		maxInflight:      s.str("max-inflight", "LLMSCOPE_MAX_INFLIGHT", "1024", "requests handled at once; more get 503 (0: no limit)"),
		maxConns:         s.str("max-conns", "LLMSCOPE_MAX_CONNS", "4096", "open client connections at once; more wait to be accepted (0: no limit)"),
		maxBuffered:      s.str("max-buffered-bytes", "LLMSCOPE_MAX_BUFFERED_BYTES", "256MiB", "bytes held by all request bodies in flight together; beyond it requests get 503"),
		bodyTimeout:      s.str("body-timeout", "LLMSCOPE_BODY_TIMEOUT", "60s", "longest time a client may take to send a request body (408 beyond)"),
		tlsCert:          s.str("tls-cert", "LLMSCOPE_TLS_CERT", "", "serve HTTPS with this certificate file (PEM; with --tls-key)"),
		tlsKey:           s.str("tls-key", "LLMSCOPE_TLS_KEY", "", "private key file of --tls-cert (PEM)"),
	}
}

// limits are the resolved resource bounds of serve.
type limits struct {
	maxInflight, maxConns int
	maxBuffered           int64
	bodyTimeout           time.Duration
}

func (o *secureOptions) limits() (limits, error) {
	var l limits
	n, err := o.maxInflight.Int()
	if err != nil {
		return l, err
	}
	m, err := o.maxConns.Int()
	if err != nil {
		return l, err
	}
	if n < 0 || m < 0 {
		return l, errors.New("--max-inflight and --max-conns must not be negative")
	}
	l.maxInflight, l.maxConns = int(n), int(m)
	if l.maxBuffered, err = o.maxBuffered.Int(); err != nil {
		return l, err
	}
	if l.maxBuffered <= 0 {
		return l, fmt.Errorf("--max-buffered-bytes: must be positive, got %d", l.maxBuffered)
	}
	if l.bodyTimeout, err = o.bodyTimeout.Duration(); err != nil {
		return l, err
	}
	if l.bodyTimeout <= 0 {
		return l, errors.New("--body-timeout: must be positive")
	}
	if (o.tlsCert.val == "") != (o.tlsKey.val == "") {
		return l, errors.New("--tls-cert and --tls-key go together")
	}
	return l, nil
}

// guardConfig builds the authentication and limits around every route.
// serverKey tells whether the gateway holds a provider key of its own.
func (o *secureOptions) guardConfig(addr string, maxInflight int, logger *slog.Logger) (auth.Config, error) {
	cfg := auth.Config{MaxInflight: maxInflight, Logger: logger}
	switch {
	case o.adminToken.val != "" && o.adminTokenFile.val != "":
		return cfg, errors.New("--admin-token and --admin-token-file: give one of them")
	case o.adminToken.val != "":
		if len(o.adminToken.val) < 16 {
			return cfg, errors.New("--admin-token: use at least 16 characters (e.g. openssl rand -hex 32)")
		}
		h := auth.HashToken(o.adminToken.val)
		cfg.AdminTokenHash = &h
	case o.adminTokenFile.val != "":
		h, err := auth.LoadAdminTokenFile(o.adminTokenFile.val)
		if err != nil {
			return cfg, fmt.Errorf("--admin-token-file: %w", err)
		}
		cfg.AdminTokenHash = &h
	}
	if path := o.clientKeys.val; path != "" {
		keys, err := auth.LoadClientKeys(path)
		if err != nil {
			return cfg, fmt.Errorf("--client-keys: %w", err)
		}
		cfg.ClientKeys = keys
	}
	pass, err := o.passProviderKeys.Bool()
	if err != nil {
		return cfg, err
	}
	cfg.PassProviderKeys = pass
	cfg.SessionSecret = []byte(secret("LLMSCOPE_SESSION_SECRET"))
	cfg.AllowedHosts = defaultHosts(splitList(o.allowedHosts.val), addr)
	cfg.AllowedOrigins = splitList(o.allowedOrigins.val)
	return cfg, nil
}

// defaultHosts returns the Host values to accept: the configured ones, or
// on a loopback address the loopback names (the guard's default, nil), or
// on a specific address the loopback names and that host. On a wildcard
// address any Host is accepted unless configured: authentication, required
// there, is what protects it.
func defaultHosts(configured []string, addr string) []string {
	if len(configured) > 0 {
		return configured
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || loopback(addr) {
		return nil
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return []string{"*"}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return []string{"localhost", "127.0.0.1", "[::1]", host}
}

// loopback reports whether the listen address addr reaches this machine
// only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkExposure refuses a non-loopback listen address that leaves the
// recorded calls or the upstream key open to whoever reaches it, unless
// insecure says so explicitly: it needs the admin token, and client
// authentication on /v1 when the gateway holds a provider key of its own
// (serverKey) that any request could spend.
func checkExposure(addr string, admin, clients, serverKey, insecure bool) error {
	if loopback(addr) || insecure || admin && (clients || !serverKey) {
		return nil
	}
	var missing []string
	if !admin {
		missing = append(missing, "--admin-token (or --admin-token-file) to protect /api, the dashboard and /metrics, which show every recorded call")
	}
	if !clients && serverKey {
		missing = append(missing, "--client-keys (or --pass-provider-keys) to protect /v1, through which anyone could spend the upstream key")
	}
	return fmt.Errorf("refusing to listen on %s, which is reachable from other machines, without authentication: set %s; or pass --insecure to run it open anyway",
		addr, strings.Join(missing, ", and "))
}
