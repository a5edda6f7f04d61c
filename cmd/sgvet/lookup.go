package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

const lookupAbout = `Usage: sgvet lookup [flags] ADDRESS|CIDR ...

Ask the reputation providers about addresses and prefixes directly, and print every
provider's verdict: malicious, suspicious, clean, or unknown when the provider could not
answer (no key, quota spent, an error, or an address family or prefix it does not check).
An operand - reads more of them from standard input, one per line (# starts a comment).
Addresses are looked up one by one; a CIDR is checked by the providers that take prefixes
(the offline blocklists, AbuseIPDB's check-block) and is unknown to the others. Private,
documentation and other special-purpose addresses are refused: only public ones are asked.

Providers are asked when their API key is set: MDCLOUD_APIKEY (metadefender),
ABUSEIPDB_API_KEY (abuseipdb), VT_API_KEY (virustotal), GREYNOISE_API_KEY (greynoise); the
offline blocklist when --blocklist gives a list. Verdicts are cached for a day per provider
(see --cache and config.example.yaml).

Exit status: 0 when nothing is malicious or suspicious; 1 when something is; 3 when no
provider could answer for some target; 2 for a usage or configuration error.

Examples:
  MDCLOUD_APIKEY=... sgvet lookup 85.25.199.246 2a03:2880:f10c:83:face:b00c::25de
  sgvet lookup --blocklist firehol_level1.netset --providers blocklist 185.50.196.0/22
  sgvet lookup --format json 94.73.144.9
  grep -v '^#' contractors.txt | sgvet lookup -
`

func lookupFlags(o *commandOptions) *commandFlags {
	c := newCommandFlags("sgvet lookup", lookupAbout)
	c.operands = true
	o.common.registerProviders(c)
	registerOutput(c, groupOutput, &o.format, &o.output, []string{"table", "json"})
	o.common.registerConfig(c)
	o.common.registerInputLimit(c.group(groupGeneral))
	return c
}

func runLookup(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o commandOptions
	fs, operands, err := lookupFlags(&o).parse(args, stdout)
	if err != nil {
		return err
	}
	format, output := o.format, o.output
	if format != "table" && format != "json" {
		return usageErrorf("--format must be table or json, not %q", format)
	}
	if len(operands) == 0 {
		return usageErrorf("lookup needs at least one address or CIDR (see 'sgvet lookup --help')")
	}
	if i := slices.Index(operands, "-"); i >= 0 && slices.Contains(operands[i+1:], "-") {
		return usageErrorf("- (standard input) can be given only once")
	}
	cfg, err := o.common.load(fs)
	if err != nil {
		return err
	}
	var targets []reputation.Target
	for _, op := range operands {
		if op == "-" {
			bounded := newBoundedReader(stdin, cfg.MaxInputSize)
			read, err := readTargets(bounded, "stdin")
			// The line cut at the limit may be what failed to parse.
			if err != nil && bounded.exceeded() {
				return tooLarge("lookup", "-", cfg.MaxInputSize)
			}
			if err != nil {
				return err
			}
			targets = append(targets, read...)
			continue
		}
		t, err := reputation.ParseTarget(op)
		if err == nil {
			err = public(t)
		}
		if err != nil {
			return usageErrorf("%v", err)
		}
		targets = append(targets, t)
	}
	if err := checkOutput(output); err != nil {
		return err
	}
	status := newStatusLine(stderr)
	log := cfg.newLogger(status.logWriter(stderr))
	vetter, closeCache, err := newVetter(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeCache()

	started := time.Now().UTC()
	stopProgress := startVetProgress(status, vetter, len(targets), addressRates(cfg.Reputation.Providers))
	results, err := vetter.Vet(ctx, targets)
	stopProgress()
	if err != nil {
		return err
	}

	err = writeOutput(ctx, output, stdout, func(w io.Writer) error {
		if format == "json" {
			return writeLookupJSON(w, started, vetter.Stats(), results)
		}
		return writeLookupTable(w, results)
	})
	if err != nil {
		return err
	}

	bad, unvetted := false, false
	for _, r := range results {
		switch reputation.Worst(r.Verdicts) {
		case reputation.Malicious, reputation.Suspicious:
			bad = true
		case reputation.Unknown:
			unvetted = true
		}
	}
	switch {
	case bad:
		return &exitError{code: exitFindings}
	case unvetted:
		return errIncomplete
	}
	return nil
}

// lookupSchema is the value of the JSON output's schema field.
const lookupSchema = "sgvet.lookup/v1"

func writeLookupJSON(w io.Writer, started time.Time, stats []reputation.ProviderStats, results []reputation.Result) error {
	out := struct {
		Schema    string                     `json:"schema"`
		CheckedAt time.Time                  `json:"checked_at"`
		Providers []reputation.ProviderStats `json:"providers"`
		Results   []reputation.Result        `json:"results"`
	}{lookupSchema, started, stats, results}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeLookupTable(w io.Writer, results []reputation.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tPROVIDER\tVERDICT\tSCORE\tCATEGORIES\tEVIDENCE")
	for _, r := range results {
		for _, v := range r.Verdicts {
			sc := "-"
			if v.Score != nil {
				sc = fmt.Sprint(*v.Score)
			}
			detail := v.Evidence
			if v.Status == reputation.Unknown {
				detail = v.Reason
			}
			if v.Cached {
				detail += " (cached)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Target, v.Provider, v.Status, sc,
				cell(strings.Join(v.Categories, ",")), cell(detail))
		}
	}
	return tw.Flush()
}

// readTargets reads one address or CIDR per line; blank lines and text after # are ignored.
// Errors name the source and the line.
func readTargets(r io.Reader, name string) ([]reputation.Target, error) {
	var out []reputation.Target
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		if text = strings.TrimSpace(text); text == "" {
			continue
		}
		t, err := reputation.ParseTarget(text)
		if err == nil {
			err = public(t)
		}
		if err != nil {
			return nil, usageErrorf("%s: line %d: %v", name, line, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, err
		}
		return nil, usageErrorf("%s: %v", name, err)
	}
	return out, nil
}

// public refuses targets no provider should be asked about: the whole internet, and
// addresses of the special-purpose registries (private, loopback, documentation ...).
func public(t reputation.Target) error {
	if collector.IsWorld(t.Prefix) {
		return fmt.Errorf("%s is the whole internet: nothing to look up", t)
	}
	if r, ok := collector.Special(t.Prefix); ok {
		return fmt.Errorf("%s is not a public address (%s, %s): only public addresses are looked up", t, r.Name, r.RFC)
	}
	return nil
}
