package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
)

// exampleInventory is the inventory of the example files, with the description of a group
// and of a rule holding what JSON escapes: HTML, quotes, line breaks, and a line separator.
func exampleInventory(t *testing.T) *collector.Inventory {
	t.Helper()
	var files []*collector.File
	for _, name := range []string{"security-groups.json", "security-groups-eu-west-1.json", "network-interfaces.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := collector.ParseFile(name, data)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	c := collector.FromFiles(files)
	const awkward = "<b>Bob's</b> & \"Eve\"\nline\u2028separator\t\"tab\""
	c.Groups[0].Description = awkward
	c.Rules[0].Description = awkward
	inv := c.Inventory(time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC), collector.Options{})
	if len(inv.Groups) == 0 || len(inv.Rules) == 0 || len(inv.Public) == 0 {
		t.Fatalf("the examples make %d groups, %d rules and %d public sources; want some of each", len(inv.Groups), len(inv.Rules), len(inv.Public))
	}
	return inv
}

// encodeWhole is how the inventory JSON was written before it was streamed: the whole
// document at once.
func encodeWhole(t *testing.T, doc any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestWriteInventoryJSONIsTheWholeEncoding(t *testing.T) {
	empty := func(inv *collector.Inventory) {
		inv.Groups, inv.Rules, inv.Public = []collector.Group{}, []collector.Rule{}, []collector.PublicSource{}
	}
	tests := []struct {
		name   string
		change func(*collector.Inventory)
	}{
		{"examples", func(*collector.Inventory) {}},
		{"empty lists", empty},
		{"nil lists", func(inv *collector.Inventory) { inv.Groups, inv.Rules, inv.Public = nil, nil, nil }},
		{"no public sources", func(inv *collector.Inventory) { inv.Public = nil }},
		{"one of each", func(inv *collector.Inventory) {
			inv.Groups, inv.Rules = inv.Groups[:1], inv.Rules[:1]
			inv.Public = []collector.PublicSource{{Kind: collector.KindAddress, Address: netip.MustParseAddr("203.0.113.7"), Rules: []string{"sgr-1"}}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := exampleInventory(t)
			tc.change(inv)
			want := encodeWhole(t, inv)
			var got bytes.Buffer
			if err := writeInventoryJSON(&got, inv); err != nil {
				t.Fatalf("writeInventoryJSON: %v", err)
			}
			if got.String() != want {
				t.Errorf("writeInventoryJSON wrote\n%s\nwant, as json.Encoder writes it,\n%s", got.String(), want)
			}
		})
	}
}

func TestStreamInventoryJSONOfCollectsFile(t *testing.T) {
	inv := exampleInventory(t)
	doc := func(inv *collector.Inventory) any {
		return runInventory{Run: "run-1", MaxHostsPerCIDR: 16, Inventory: inv}
	}
	want := encodeWhole(t, doc(inv))
	var got bytes.Buffer
	if err := streamInventoryJSON(&got, inv, doc); err != nil {
		t.Fatalf("streamInventoryJSON: %v", err)
	}
	if got.String() != want {
		t.Errorf("streamInventoryJSON wrote\n%s\nwant, as json.Encoder writes it,\n%s", got.String(), want)
	}
}

// largestWrite records the size of the largest Write it was given.
type largestWrite struct{ total, largest int }

func (w *largestWrite) Write(p []byte) (int, error) {
	w.total += len(p)
	w.largest = max(w.largest, len(p))
	return len(p), nil
}

func TestWriteInventoryJSONStreams(t *testing.T) {
	inv := exampleInventory(t)
	rules := inv.Rules
	for i := range 2000 {
		r := rules[i%len(rules)]
		r.ID = fmt.Sprintf("sgr-%017d", i)
		inv.Rules = append(inv.Rules, r)
	}
	whole := len(encodeWhole(t, inv))
	var w largestWrite
	if err := writeInventoryJSON(&w, inv); err != nil {
		t.Fatalf("writeInventoryJSON: %v", err)
	}
	if w.total != whole {
		t.Errorf("writeInventoryJSON wrote %d bytes, want %d", w.total, whole)
	}
	if limit := 64 << 10; w.largest > limit || whole <= 2*limit {
		t.Errorf("writeInventoryJSON wrote %d bytes at once, of %d; want at most %d at once, of more than %d", w.largest, whole, limit, 2*limit)
	}
}

// BenchmarkWriteInventoryJSON writes the inventory of 100,000 rules, each from its own
// public address, in groups of 100, to io.Discard. B/op is what writing the JSON allocates.
func BenchmarkWriteInventoryJSON(b *testing.B) {
	const n = 100_000
	var c collector.Collection
	for g := range n / 100 {
		c.Groups = append(c.Groups, collector.Group{ID: fmt.Sprintf("sg-%017x", g), Name: fmt.Sprintf("app%d", g), VPC: "vpc-1", Account: "123456789012", Region: "us-east-1"})
	}
	for i := range n {
		c.Rules = append(c.Rules, collector.Rule{
			Account: "123456789012", Region: "us-east-1", VPC: "vpc-1", GroupID: c.Groups[i/100].ID, GroupName: c.Groups[i/100].Name,
			ID: fmt.Sprintf("sgr-%017x", i), Direction: collector.Ingress, Protocol: "tcp", FromPort: 443, ToPort: 443,
			CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}), 32), Description: fmt.Sprintf("office %d", i),
		})
	}
	inv := c.Inventory(time.Now(), collector.Options{})
	var w largestWrite
	b.ReportAllocs()
	for b.Loop() {
		w = largestWrite{}
		if err := writeInventoryJSON(&w, inv); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.total)/1e6, "MB-written")
}
