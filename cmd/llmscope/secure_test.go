package main

import (
	"slices"
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8700": true, "localhost:8700": true, "[::1]:8700": true, "127.0.0.2:0": true,
		"0.0.0.0:8700": false, ":8700": false, "[::]:8700": false, "10.1.2.3:8700": false, "myhost:8700": false, "bad": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %t, want %t", addr, got, want)
		}
	}
}

func TestCheckExposure(t *testing.T) {
	if err := checkExposure("127.0.0.1:8700", false, false, true, false); err != nil {
		t.Errorf("loopback without auth refused: %v", err)
	}
	for _, c := range []struct {
		admin, clients, serverKey bool
		want                      []string // nil: accepted
	}{
		{false, false, true, []string{"--admin-token", "--client-keys", "--insecure", "0.0.0.0:8700"}},
		{false, false, false, []string{"--admin-token", "recorded call"}},
		{true, false, true, []string{"--client-keys", "spend the upstream key"}},
		{false, true, true, []string{"--admin-token", "recorded call"}},
		{true, false, false, nil}, // clients bring their own keys: /v1 spends none of ours
		{true, true, true, nil},
	} {
		err := checkExposure("0.0.0.0:8700", c.admin, c.clients, c.serverKey, false)
		if c.want == nil {
			if err != nil {
				t.Errorf("%+v refused: %v", c, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: exposed address accepted", c)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q does not say %q", c, err, w)
			}
		}
		if c.serverKey == false && strings.Contains(err.Error(), "--client-keys") {
			t.Errorf("%+v: asks for client keys although the gateway holds no key: %q", c, err)
		}
	}
	if err := checkExposure("0.0.0.0:8700", false, false, true, true); err != nil {
		t.Errorf("--insecure refused: %v", err)
	}
}

func TestDefaultHosts(t *testing.T) {
	for _, c := range []struct {
		configured []string
		addr       string
		want       []string
	}{
		{nil, "127.0.0.1:8700", nil},
		{nil, "0.0.0.0:8700", []string{"*"}},
		{nil, ":8700", []string{"*"}},
		{nil, "10.0.0.5:8700", []string{"localhost", "127.0.0.1", "[::1]", "10.0.0.5"}},
		{nil, "[fd00::5]:8700", []string{"localhost", "127.0.0.1", "[::1]", "[fd00::5]"}},
		{[]string{"llm.example.com"}, "0.0.0.0:8700", []string{"llm.example.com"}},
	} {
		if got := defaultHosts(c.configured, c.addr); !slices.Equal(got, c.want) {
			t.Errorf("defaultHosts(%v, %q) = %v, want %v", c.configured, c.addr, got, c.want)
		}
	}
}
