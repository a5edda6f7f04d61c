package motoserver_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/sgvet/sgvet/internal/motoserver"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// ec2 sends an EC2 query API call to s and returns the response body. moto
// routes requests by the service named in the Authorization header; it does
// not check the signature.
func ec2(t *testing.T, s *motoserver.Server, action string, params url.Values) string {
	t.Helper()
	form := url.Values{"Action": {action}, "Version": {"2016-11-15"}}
	for k, v := range params {
		form[k] = v
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x")
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s\n%s", action, resp.Status, body)
	}
	return string(body)
}

var loopbackURL = regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+$`)

func TestResetWipesState(t *testing.T) {
	s := motoserver.Require(t, moto)
	if !loopbackURL.MatchString(s.URL) {
		t.Fatalf("URL %q is not a loopback http URL", s.URL)
	}
	t.Logf("moto_server pid %d at %s", s.Pid(), s.URL)

	out := ec2(t, s, "CreateVpc", url.Values{"CidrBlock": {"10.0.0.0/16"}})
	m := regexp.MustCompile(`<vpcId>(vpc-[0-9a-f]+)</vpcId>`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no vpcId in CreateVpc response:\n%s", out)
	}
	vpc := m[1]
	if out := ec2(t, s, "DescribeVpcs", nil); !strings.Contains(out, vpc) {
		t.Fatalf("DescribeVpcs does not list %s:\n%s", vpc, out)
	}

	if err := s.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out := ec2(t, s, "DescribeVpcs", nil); strings.Contains(out, vpc) || strings.Contains(out, "10.0.0.0/16") {
		t.Fatalf("DescribeVpcs still lists %s after Reset:\n%s", vpc, out)
	}
}

func TestEnv(t *testing.T) {
	s := motoserver.Require(t, moto)
	env := strings.Join(s.Env(), "\n") + "\n"
	for _, want := range []string{
		"AWS_ENDPOINT_URL=" + s.URL + "\n",
		"AWS_ACCESS_KEY_ID=test\n",
		"AWS_SECRET_ACCESS_KEY=test\n",
		"AWS_REGION=us-east-1\n",
		"AWS_EC2_METADATA_DISABLED=true\n",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %q", want)
		}
	}
}

func TestStartStop(t *testing.T) {
	motoserver.Require(t, moto) // skip when moto_server is not installed

	s, err := motoserver.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	t.Logf("second moto_server pid %d at %s", pid, s.URL)
	if s.URL == moto.URL || !loopbackURL.MatchString(s.URL) {
		t.Errorf("second server URL %q (first %q)", s.URL, moto.URL)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("server pid %d not running before Stop: %v", pid, err)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("signal 0 to pid %d after Stop: got %v, want ESRCH", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("signal 0 to process group %d after Stop: got %v, want ESRCH", pid, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
