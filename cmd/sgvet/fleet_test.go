package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// createQueue makes an SQS queue in moto and returns its URL.
func createQueue(t *testing.T, name string, attrs map[string]string) string {
	t.Helper()
	client := sqs.NewFromConfig(moto.AWSConfig(t, "us-east-1"))
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: &name, Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return *out.QueueUrl
}

// The queue commands refuse what cannot work before doing any, naming the flag.
func TestQueueCommandsUsage(t *testing.T) {
	useMoto(t)
	isolateProviders(t)
	lookups := createQueue(t, "lookups", nil)
	fifo := createQueue(t, "lookups.fifo", map[string]string{"FifoQueue": "true"})
	inventory := filepath.Join(t.TempDir(), "run.json")
	notInventory := writeFile(t, "groups.json", `{"schema":"sgvet.inventory/v1","groups":[]}`)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"collect without queue", []string{"collect", "--inventory", inventory}, "--queue-url is required"},
		{"collect without either", []string{"collect"}, "--inventory and --queue-url are required"},
		{"work without results", []string{"work", "--queue-url", lookups}, "--results-url is required"},
		{"report without inventory", []string{"report", "--results-url", lookups}, "--inventory is required"},
		{"audit with one queue", []string{"audit", "--input", "../../examples/security-groups.json", "--queue-url", lookups}, "--results-url is required"},
		{"FIFO lookups", []string{"collect", "--input", "../../examples/security-groups.json", "--inventory", inventory, "--queue-url", fifo}, "--queue-url: " + fifo + " is a FIFO queue"},
		{"FIFO results", []string{"work", "--queue-url", lookups, "--results-url", fifo}, "--results-url: " + fifo + " is a FIFO queue"},
		{"not a URL", []string{"collect", "--inventory", inventory, "--queue-url", "sgvet-lookups"}, `--queue-url: "sgvet-lookups" is not a queue URL`},
		{"no such queue", []string{"work", "--queue-url", lookups, "--results-url", lookups + "-missing", "--blocklist", "../../examples/blocklist.netset"}, "--results-url " + lookups + "-missing: queue does not exist"},
		{"negative wait", []string{"report", "--inventory", inventory, "--results-url", lookups, "--wait", "-1s"}, "--wait must not be negative"},
		{"negative idle", []string{"work", "--queue-url", lookups, "--results-url", lookups, "--idle-exit", "-1s"}, "--idle-exit must not be negative"},
		{"fleet size", []string{"work", "--queue-url", lookups, "--results-url", lookups, "--fleet-size", "0"}, "fleet_size (--fleet-size) must be between 1 and 10000, not 0"},
		{"missing inventory", []string{"report", "--inventory", inventory, "--results-url", lookups}, "run.json"},
		{"not collect's inventory", []string{"report", "--inventory", notInventory, "--results-url", lookups}, "not an inventory written by sgvet collect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := sgvet(t, "", tc.args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("sgvet %q = exit %d, stderr %q; want exit 2 and %q", tc.args, res.code, res.stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(inventory); err == nil {
		t.Error("an inventory was written by a command that failed")
	}
}

// collect writes the inventory with its run id, prints the run id, and queues the run's
// addresses 50 to a message; report, with nothing to gather, reports every address
// unvetted once --wait runs out.
func TestCollectThenReportUnanswered(t *testing.T) {
	useMoto(t)
	isolateProviders(t)
	lookups := createQueue(t, "lookups", nil)
	results := createQueue(t, "results", nil)
	inventory := filepath.Join(t.TempDir(), "run.json")
	res := sgvet(t, "", "collect", "--input", "../../examples/security-groups.json", "--inventory", inventory, "--queue-url", lookups)
	run := strings.TrimSpace(res.stdout)
	if res.code != exitIncomplete || !regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{8}$`).MatchString(run) {
		// The example holds a prefix list that files cannot expand: the collection is incomplete.
		t.Fatalf("collect = exit %d, stdout %q, stderr %q; want exit 3 and a run id", res.code, res.stdout, res.stderr)
	}
	var doc struct {
		Run    string `json:"run"`
		Schema string `json:"schema"`
		Rules  []json.RawMessage
	}
	data, err := os.ReadFile(inventory)
	if err != nil || json.Unmarshal(data, &doc) != nil || doc.Run != run || doc.Schema != "sgvet.inventory/v1" || len(doc.Rules) == 0 {
		t.Fatalf("inventory = %.200s (%v), want run %s", data, err, run)
	}

	client := sqs.NewFromConfig(moto.AWSConfig(t, "us-east-1"))
	addresses, messages := 0, 0
	for {
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &lookups, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			var lookup struct {
				V         int
				Run       string
				Addresses []string
			}
			if err := json.Unmarshal([]byte(*m.Body), &lookup); err != nil || lookup.Run != run || len(lookup.Addresses) > 50 {
				t.Fatalf("lookup message %s: %v", *m.Body, err)
			}
			if got := *m.MessageAttributes["sgvet-run"].StringValue; got != run {
				t.Errorf("sgvet-run attribute = %q, want %q", got, run)
			}
			addresses += len(lookup.Addresses)
			messages++
		}
	}
	if addresses == 0 || messages != (addresses+49)/50 {
		t.Errorf("%d addresses in %d messages, want %d messages", addresses, messages, (addresses+49)/50)
	}

	res = sgvet(t, "", "report", "--inventory", inventory, "--results-url", results, "--wait", "1s", "-f", "json", "--fail-on", "none")
	var rep struct {
		Run     struct{ ID string }
		Summary struct {
			AddressesTotal    int `json:"addresses_total"`
			AddressesUnvetted int `json:"addresses_unvetted"`
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != exitIncomplete {
		t.Fatalf("report = exit %d, %v; stderr %q", res.code, err, res.stderr)
	}
	if rep.Run.ID != run || rep.Summary.AddressesTotal != addresses || rep.Summary.AddressesUnvetted != addresses {
		t.Errorf("report run %s: %+v; want run %s with all %d addresses unvetted", rep.Run.ID, rep.Summary, run, addresses)
	}
}

// reportFindings returns the findings of a JSON report, without the times their verdicts
// were checked at, and the report's summary.
func reportFindings(t *testing.T, name, data string) (findings []any, summary any) {
	t.Helper()
	var doc struct {
		Findings []any `json:"findings"`
		Summary  any   `json:"summary"`
	}
	if err := json.Unmarshal([]byte(data), &doc); err != nil {
		t.Fatalf("%s: the report is not JSON: %v\n%.2000s", name, err, data)
	}
	var strip func(v any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			delete(v, "checked_at")
			for _, e := range v {
				strip(e)
			}
		case []any:
			for _, e := range v {
				strip(e)
			}
		}
	}
	strip(doc.Findings)
	return doc.Findings, doc.Summary
}
