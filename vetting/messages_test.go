package vetting

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/reputation"
)

func TestMessagesRoundTrip(t *testing.T) {
	targets := []reputation.Target{
		reputation.AddressTarget(netip.MustParseAddr("203.0.113.7")),
		reputation.AddressTarget(netip.MustParseAddr("2001:db8::7")),
		reputation.PrefixTarget(netip.MustParsePrefix("198.51.100.0/24")),
	}
	body, err := EncodeLookup("run-1", targets)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"run":"run-1","addresses":["203.0.113.7","2001:db8::7","198.51.100.0/24"]}`; string(body) != want {
		t.Errorf("EncodeLookup = %s, want %s", body, want)
	}
	m, err := DecodeLookup(body)
	if err != nil || m.Run != "run-1" || !slices.Equal(m.Addresses, targets) {
		t.Errorf("DecodeLookup(%s) = %+v, %v", body, m, err)
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	verdicts := []reputation.Verdict{{Provider: "blocklist", Target: targets[0], Status: reputation.Malicious, CheckedAt: at}}
	body, err = EncodeVerdicts("run-1", verdicts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeVerdicts(body)
	if err != nil || v.Run != "run-1" || len(v.Verdicts) != 1 || v.Verdicts[0].Target != targets[0] || v.Verdicts[0].Status != reputation.Malicious {
		t.Errorf("DecodeVerdicts(%s) = %+v, %v", body, v, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"v":2,"run":"r","addresses":[]}`, "version 2, want 1"},
		{`{"v":1,"run":"r","addresses":["not an address"]}`, "decode lookup message"},
		{`not json`, "decode lookup message"},
	} {
		if _, err := DecodeLookup([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeLookup(%q) = %v, want an error containing %q", tc.body, err, tc.want)
		}
	}
	if _, err := DecodeVerdicts([]byte(`{"v":0,"run":"r","verdicts":[]}`)); err == nil || !strings.Contains(err.Error(), "version 0, want 1") {
		t.Errorf("DecodeVerdicts(version 0) = %v, want a version error", err)
	}
}
