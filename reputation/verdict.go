// Package reputation asks reputation services and offline blocklists about public
// addresses and prefixes, and returns one verdict per provider and target.
//
// A Vetter fans the targets out over workers, one rate limiter per provider shared by all of
// them, batches for providers with a bulk endpoint, keeps to each provider's daily quota and
// caches verdicts in a SQLite file. A provider that cannot answer says so: its verdict is
// Unknown, never Clean.
package reputation

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Status is what a provider concluded about a target.
type Status string

// The statuses of a Verdict, from worst to best; Unknown means the provider could not answer.
const (
	Malicious  Status = "malicious"
	Suspicious Status = "suspicious"
	Clean      Status = "clean"
	Unknown    Status = "unknown"
)

// Target is what is looked up: one address (a /32 or /128) or a prefix. It is always masked.
type Target struct{ netip.Prefix }

// AddressTarget returns the target for one address. IPv4-mapped IPv6 addresses become IPv4.
func AddressTarget(a netip.Addr) Target {
	a = a.Unmap()
	return Target{netip.PrefixFrom(a, a.BitLen())}
}

// PrefixTarget returns the target for a prefix, masked; a prefix of one address is that
// address.
func PrefixTarget(p netip.Prefix) Target {
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			bits = 0
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return Target{p.Masked()}
}

// Compare orders targets by address (IPv4 before IPv6), then prefix length: it returns -1,
// 0 or 1 as t is before, equal to or after u.
func (t Target) Compare(u Target) int {
	if c := t.Addr().Compare(u.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(t.Bits(), u.Bits())
}

// ParseTarget parses an address or a CIDR.
func ParseTarget(s string) (Target, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Target{}, fmt.Errorf("address %q has a zone", s)
		}
		return AddressTarget(a), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is neither an address nor a CIDR", s)
	}
	return PrefixTarget(p), nil
}

// IsAddress reports whether the target is a single address.
func (t Target) IsAddress() bool { return t.IsValid() && t.IsSingleIP() }

// String returns the address for a single address, the CIDR otherwise.
func (t Target) String() string {
	if t.IsAddress() {
		return t.Addr().String()
	}
	return t.Prefix.String()
}

// MarshalText implements encoding.TextMarshaler, in the form of String.
func (t Target) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, accepting what ParseTarget accepts.
func (t *Target) UnmarshalText(b []byte) error {
	v, err := ParseTarget(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Verdict is one provider's answer about one target.
type Verdict struct {
	Provider string `json:"provider"`
	Target   Target `json:"target"`
	Status   Status `json:"verdict"`
	// Score is the provider's own score where it has one: MetaDefender's count of listing
	// sources, AbuseIPDB's confidence, VirusTotal's count of malicious engines.
	Score *int `json:"score,omitempty"`
	// Categories are the provider's categories or tags, e.g. "botnet", "scanner".
	Categories []string `json:"categories,omitempty"`
	// Country is the ISO 3166 country code where the provider gives one.
	Country string `json:"country,omitempty"`
	// Evidence is a short human sentence: what was listed, where, by whom.
	Evidence string `json:"evidence,omitempty"`
	// Reason says why the verdict is Unknown.
	Reason    string    `json:"reason,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
	// Cached is true when the verdict came from the cache rather than the provider.
	Cached bool `json:"cached,omitempty"`
}

// Known reports whether the provider answered (the status is not Unknown).
func (v Verdict) Known() bool { return v.Status != Unknown && v.Status != "" }

// unknown returns an Unknown verdict for target with a reason. The verdict names its
// provider, so a reason that starts with the provider's name (as the errors of this
// package do) loses it: "quota exhausted", not "metadefender: quota exhausted".
func unknown(provider string, t Target, at time.Time, reason string) Verdict {
	return Verdict{Provider: provider, Target: t, Status: Unknown, Reason: withoutProvider(provider, reason), CheckedAt: at}
}

// withoutProvider returns reason without the provider's name in front of it.
func withoutProvider(provider, reason string) string {
	if provider == "" {
		return reason
	}
	return strings.TrimPrefix(reason, provider+": ")
}

func score(n int) *int { return &n }

// rank orders statuses from worst (0) to Unknown.
func (s Status) rank() int {
	switch s {
	case Malicious:
		return 0
	case Suspicious:
		return 1
	case Clean:
		return 2
	}
	return 3
}

// Worst returns the worst known status of verdicts, or Unknown when none is known.
func Worst(verdicts []Verdict) Status {
	worst := Unknown
	for _, v := range verdicts {
		if v.Status.rank() < worst.rank() {
			worst = v.Status
		}
	}
	return worst
}
