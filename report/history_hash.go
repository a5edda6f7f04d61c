package report

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// historyHasher hashes the fields fed to it: it gathers them, each string after its length,
// and hashes them 8 bytes at a time. The hash is the same in every process, as it is stored.
//
// Rules and verdicts are hashed field by field, not as their JSON, so that a run that
// changes nothing marshals nothing: TestHistoryHashesEveryField checks that every field
// counts.
type historyHasher struct{ buf []byte }

// str feeds s, after its length.
func (f *historyHasher) str(s string) {
	f.buf = binary.AppendUvarint(f.buf, uint64(len(s)))
	f.buf = append(f.buf, s...)
}

// int feeds n.
func (f *historyHasher) int(n int64) {
	f.buf = binary.AppendVarint(f.buf, n)
}

// bool feeds b.
func (f *historyHasher) bool(b bool) {
	n := int64(0)
	if b {
		n = 1
	}
	f.int(n)
}

// prefix feeds p: its address's length in bits (0 for the zero Prefix), its address and its
// length.
func (f *historyHasher) prefix(p netip.Prefix) {
	a := p.Addr()
	f.int(int64(a.BitLen()))
	f.buf, _ = a.AppendBinary(f.buf)
	f.int(int64(p.Bits()))
}

// sum returns the hash of what was fed, which is never 0, the hash of nothing known, and
// forgets it. Each 8 bytes go through a step that, whatever the state, gives another state
// for other bytes, and the state through the finalizer of MurmurHash3.
func (f *historyHasher) sum() uint64 {
	const m = 0x9e3779b97f4a7c15
	b := f.buf
	h := uint64(len(b)) * m
	for ; len(b) >= 8; b = b[8:] {
		h = bits.RotateLeft64((h^binary.LittleEndian.Uint64(b))*m, 31)
	}
	var tail [8]byte
	copy(tail[:], b)
	h = bits.RotateLeft64((h^binary.LittleEndian.Uint64(tail[:]))*m, 31)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	f.buf = f.buf[:0]
	return max(h, 1)
}

// rule returns the hash of every field of r.
func (f *historyHasher) rule(r *collector.Rule) int64 {
	for _, s := range [...]string{r.Account, r.Region, r.VPC, r.GroupID, r.GroupName, r.ID, string(r.Direction), r.Protocol} {
		f.str(s)
	}
	f.int(int64(r.FromPort))
	f.int(int64(r.ToPort))
	f.prefix(r.CIDR)
	f.bool(r.Invalid != nil)
	if i := r.Invalid; i != nil {
		f.str(string(i.Field))
		f.str(i.Text)
		f.str(i.Reason)
	}
	f.bool(r.PrefixList != nil)
	if l := r.PrefixList; l != nil {
		for _, s := range [...]string{l.ID, l.Name, l.Owner, l.EntryDescription, l.Unresolved} {
			f.str(s)
		}
		f.bool(l.AWSManaged)
	}
	f.bool(r.ReferencedGroup != nil)
	if g := r.ReferencedGroup; g != nil {
		for _, s := range [...]string{g.GroupID, g.Account, g.VPC, g.PeeringID, g.PeeringStatus} {
			f.str(s)
		}
		f.bool(g.InOrganization != nil)
		if g.InOrganization != nil {
			f.bool(*g.InOrganization)
		}
	}
	f.str(r.Description)
	f.int(int64(r.Attached))
	return int64(f.sum())
}

// verdict returns the hash of every field of v, target standing for its target, but the
// time it was checked and whether the cache answered, which are no change.
func (f *historyHasher) verdict(v *reputation.Verdict, target reputation.Target) int64 {
	f.str(v.Provider)
	f.prefix(target.Prefix)
	f.str(string(v.Status))
	f.bool(v.Score != nil)
	if v.Score != nil {
		f.int(int64(*v.Score))
	}
	f.int(int64(len(v.Categories)))
	for _, c := range v.Categories {
		f.str(c)
	}
	f.str(v.Country)
	f.str(v.Evidence)
	f.str(v.Reason)
	return int64(f.sum())
}

// verdictKey returns the key of provider's verdicts for target in latest_verdicts: a hash of
// the two. Two pairs with the same key are told apart by their verdicts' hashes, which hash
// the provider and target too: each then has its verdicts stored again, which is harmless
// and, with 64 bits, as good as never happens.
func (f *historyHasher) verdictKey(provider string, target reputation.Target) uint64 {
	f.str(provider)
	f.prefix(target.Prefix)
	return f.sum()
}
