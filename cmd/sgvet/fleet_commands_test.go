package main

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sgvet/sgvet/queue"
)

// report expands prefixes by the max_hosts_per_cidr the inventory was collected with, so
// that the verdicts on the addresses of a prefix larger than the default are found, and
// refuses a configuration file that sets another value.
func TestReportUsesInventoryMaxHosts(t *testing.T) {
	q := relSetup(t, 30*time.Second, 5)
	in := writeFile(t, "wide.json", `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
		"IpPermissions":[{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"94.73.144.0/22","Description":"office"}]}],
		"IpPermissionsEgress":[]}]}`)
	list := writeFile(t, "list.txt", "94.73.145.9\n")
	wide := writeFile(t, "wide.yaml", "max_hosts_per_cidr: 4096\n")
	narrow := writeFile(t, "narrow.yaml", "max_hosts_per_cidr: 256\n")

	inventory := filepath.Join(t.TempDir(), "run.json")
	if res := relRun(t, "collect", "--config", wide, "--input", in, "--inventory", inventory, "--queue-url", q.lookups); res.code != 0 {
		t.Fatalf("sgvet collect = exit %d; stderr %q", res.code, res.stderr)
	}
	work := relRun(t, "work", "--queue-url", q.lookups, "--results-url", q.results,
		"--providers", "blocklist", "--blocklist", list, "--no-cache", "--idle-exit", "2s")
	if work.code != 0 {
		t.Fatalf("sgvet work = exit %d; stderr %q", work.code, work.stderr)
	}

	refused := relRun(t, "report", "--inventory", inventory, "--results-url", q.results, "--config", narrow, "--wait", "1s")
	if refused.code != exitUsage || !strings.Contains(refused.stderr, "max_hosts_per_cidr is 256") || !strings.Contains(refused.stderr, "4096") {
		t.Errorf("sgvet report --config %s = exit %d, stderr %q; want exit 2 naming max_hosts_per_cidr and 4096", narrow, refused.code, refused.stderr)
	}

	res := relRun(t, "report", "--inventory", inventory, "--results-url", q.results, "--wait", "1m", "-f", "json", "--fail-on", "none")
	findings, summary := relFindings(t, "sgvet report", res)
	if s, _ := summary.(map[string]any); s["addresses_unvetted"] != 0.0 || s["addresses_total"] != 1024.0 {
		t.Errorf("sgvet report summary = %v, want the /22's 1024 addresses, every one vetted", summary)
	}
	suspicious := false
	for _, f := range findings {
		f, _ := f.(map[string]any)
		suspicious = suspicious || f["kind"] == "suspicious-source" && f["cidr"] == "94.73.144.0/22"
	}
	if !suspicious {
		t.Errorf("sgvet report has no suspicious-source finding on 94.73.144.0/22, whose 94.73.145.9 is listed: %v", findings)
	}
}

// A report stopped by a signal while it gathers makes the verdict messages it holds visible
// again, so that a report made at once gathers every verdict, rather than none until the
// first one's hold passes.
func TestReportStoppedReleasesVerdicts(t *testing.T) {
	q := relSetup(t, 5*time.Second, 5)
	// 64 addresses: two lookup messages.
	in := writeFile(t, "net.json", `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
		"IpPermissions":[{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"81.2.69.64/26","Description":"office"}]}],
		"IpPermissionsEgress":[]}]}`)
	list := writeFile(t, "list.txt", "81.2.69.70\n")
	inventory, _ := relCollect(t, q, 0, in)
	work := []string{"work", "--queue-url", q.lookups, "--results-url", q.results,
		"--providers", "blocklist", "--blocklist", list, "--no-cache", "--idle-exit", "2s"}

	// One lookup message is kept from the worker, so that the first report waits for it.
	withheld := relReceive(t, q.client, q.lookups, 1)
	if res := relRun(t, work...); res.code != 0 {
		t.Fatalf("sgvet work = exit %d; stderr %q", res.code, res.stderr)
	}
	if n := relTotal(t, q.client, q.results); n != 1 {
		t.Fatalf("verdicts messages = %d, want 1", n)
	}

	first := relStart(t, "report", "--inventory", inventory, "--results-url", q.results, "--wait", relTimeout.String(), "-f", "json")
	relWaitFor(t, "the first report holding the verdicts message", func() bool {
		visible, inFlight := relCount(t, q.client, q.results)
		return visible == 0 && inFlight == 1
	}, first)
	first.signal(t, syscall.SIGINT)
	if res := first.wait(t); res.code != 130 {
		t.Fatalf("sgvet report stopped by SIGINT = exit %d, want 130; stderr %q", res.code, res.stderr)
	}
	if visible, inFlight := relCount(t, q.client, q.results); visible != 1 || inFlight != 0 {
		t.Errorf("after the stopped report: %d verdicts messages visible, %d in flight; want 1 visible", visible, inFlight)
	}

	if _, err := q.client.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &q.lookups, ReceiptHandle: withheld[0].ReceiptHandle, VisibilityTimeout: 0,
	}); err != nil {
		t.Fatal(err)
	}
	if res := relRun(t, work...); res.code != 0 {
		t.Fatalf("sgvet work = exit %d; stderr %q", res.code, res.stderr)
	}
	res := relRun(t, "report", "--inventory", inventory, "--results-url", q.results, "--wait", "1m", "-f", "json", "--fail-on", "none")
	_, summary := relFindings(t, "sgvet report", res)
	if s, _ := summary.(map[string]any); s["addresses_unvetted"] != 0.0 || s["addresses_total"] != 64.0 {
		t.Errorf("sgvet report after a stopped one: summary %v, want all 64 addresses vetted", summary)
	}
}

// collect whose lookups cannot be sent writes no inventory, which would look complete.
func TestCollectSendFailsWritesNoInventory(t *testing.T) {
	srv := useMoto(t)
	isolateProviders(t)
	lookups := createQueue(t, "lookups", nil)
	// SQS refusing the send, as IAM does a role without sqs:SendMessage; moto accepts every caller.
	front := frontMoto(t, srv.URL, func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.Header.Get("X-Amz-Target") != "AmazonSQS.SendMessageBatch" {
			return false
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"com.amazon.coral.service#AccessDeniedException","message":"not allowed to send"}`)
		return true
	})
	t.Setenv("AWS_ENDPOINT_URL_SQS", front)
	inventory := filepath.Join(t.TempDir(), "run.json")
	res := sgvet(t, "", "collect", "--input", "../../examples/security-groups.json", "--inventory", inventory, "--queue-url", lookups)
	if res.code != exitUsage || !strings.Contains(res.stderr, "no inventory is written") {
		t.Errorf("sgvet collect with the send refused = exit %d, stderr %q; want exit 2, saying no inventory is written", res.code, res.stderr)
	}
	if _, err := os.Stat(inventory); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an inventory was written by a collect whose lookups were not sent (%v)", err)
	}
}

// collect --inventory - writes the inventory alone to standard output, and the run id to
// standard error, so that report --inventory - reads it from a pipe.
func TestCollectInventoryToStdoutPipesToReport(t *testing.T) {
	useMoto(t)
	isolateProviders(t)
	lookups := createQueue(t, "lookups", nil)
	results := createQueue(t, "results", nil)
	t.Cleanup(func() { os.Remove("-") })
	collected := sgvet(t, "", "collect", "--input", "../../examples/security-groups.json", "--inventory", "-", "--queue-url", lookups)
	lines := strings.Split(strings.TrimSpace(collected.stderr), "\n")
	run := lines[len(lines)-1]
	var doc struct{ Run string }
	if err := json.Unmarshal([]byte(collected.stdout), &doc); err != nil || doc.Run != run || collected.code != exitIncomplete {
		t.Fatalf("sgvet collect --inventory - = exit %d, inventory of run %q (%v), last line of stderr %q; want exit 3, an inventory alone on stdout, and its run id on stderr",
			collected.code, doc.Run, err, run)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error("sgvet collect --inventory - wrote a file named -")
	}
	reported := sgvet(t, collected.stdout, "report", "--inventory", "-", "--results-url", results, "--wait", "1s", "-f", "json", "--fail-on", "none")
	var rep struct{ Run struct{ ID string } }
	if err := json.Unmarshal([]byte(reported.stdout), &rep); err != nil || rep.Run.ID != run || reported.code != exitIncomplete {
		t.Errorf("sgvet report --inventory - = exit %d, run %q (%v), stderr %q; want exit 3 and run %s", reported.code, rep.Run.ID, err, reported.stderr, run)
	}
}

// checkQueueURL refuses a URL with user information, a query or a fragment, and its error
// repeats no secret that the URL held.
func TestCheckQueueURLRefusesSecrets(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"https://user:s3cret@sqs.us-east-1.amazonaws.com/123456789012/q", "user name or password"},
		{"https://s3cret@sqs.us-east-1.amazonaws.com/123456789012/q", "user name or password"},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/q?X-Amz-Signature=s3cret", "query or a fragment"},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/q#s3cret", "query or a fragment"},
		{"https://user:s3cret%zz@sqs.us-east-1.amazonaws.com/123456789012/q", "is not a queue URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := checkQueueURL(tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("checkQueueURL(%q) = %v, want an error saying %q without the secret", tc.url, err, tc.want)
			}
		})
	}
	if region, err := checkQueueURL("https://sqs.eu-west-1.amazonaws.com/123456789012/sgvet-lookups"); region != "eu-west-1" || err != nil {
		t.Errorf("checkQueueURL(an AWS queue URL) = %q, %v; want eu-west-1", region, err)
	}

	useMoto(t)
	isolateProviders(t)
	res := sgvet(t, "", "work", "--queue-url", "https://user:s3cret@sqs.us-east-1.amazonaws.com/123456789012/q", "--results-url", "https://sqs.us-east-1.amazonaws.com/123456789012/r")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--queue-url") || strings.Contains(res.stderr+res.stdout, "s3cret") {
		t.Errorf("sgvet work --queue-url with a password = exit %d, stderr %q; want exit 2 naming --queue-url, without the password", res.code, res.stderr)
	}
}

// work that stops because its results queue is deleted returns an error that is still
// queue.ErrQueueGone, with the exit status of a queue error.
func TestWorkQueueGoneIsWrapped(t *testing.T) {
	q := relSetup(t, 30*time.Second, 5)
	list := writeFile(t, "list.txt", "81.2.69.70\n")
	stderr := new(lockedBuffer)
	done := make(chan error, 1)
	go func() {
		done <- runWork(t.Context(), []string{"--queue-url", q.lookups, "--results-url", q.results,
			"--providers", "blocklist", "--blocklist", list, "--no-cache", "--workers", "1"}, strings.NewReader(""), io.Discard, stderr)
	}()
	relWaitFor(t, "the worker to start", func() bool {
		select {
		case err := <-done:
			t.Fatalf("runWork returned %v before working; stderr %q", err, stderr.String())
		default:
		}
		return strings.Contains(stderr.String(), "msg=working")
	})
	if _, err := q.client.DeleteQueue(t.Context(), &sqs.DeleteQueueInput{QueueUrl: &q.results}); err != nil {
		t.Fatal(err)
	}
	relSendLookups(t, q, "rel-gone", [][]string{relAddresses(1, 2)})
	var err error
	select {
	case err = <-done:
	case <-time.After(relTimeout):
		t.Fatalf("runWork still running %v after its results queue was deleted; stderr %q", relTimeout, stderr.String())
	}
	var ee *exitError
	if !errors.Is(err, queue.ErrQueueGone) || !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), q.results) {
		t.Errorf("runWork with its results queue deleted = %v, want an error naming %s that is queue.ErrQueueGone, exit status %d", err, q.results, exitUsage)
	}
}
