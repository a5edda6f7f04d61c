package main

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgvet/sgvet/report"
)

// TestAuditReachability runs an audit of a moto estate: one public instance (its subnet
// gives public addresses) and one private instance behind the same open group, a database
// group whose only interface is private, and an Elastic IP on an interface of a third
// group. The open group stays critical and names the public instance; the database's
// drops a step, saying why.
func TestAuditReachability(t *testing.T) {
	srv := useMoto(t)
	isolateProviders(t)
	ctx := t.Context()
	api := ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.40.0.0/16")})
	must(err)
	subnet := func(cidr string, public bool) string {
		out, err := api.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr)})
		must(err)
		if public {
			_, err := api.ModifySubnetAttribute(ctx, &ec2.ModifySubnetAttributeInput{SubnetId: out.Subnet.SubnetId, MapPublicIpOnLaunch: &types.AttributeBooleanValue{Value: aws.Bool(true)}})
			must(err)
		}
		return aws.ToString(out.Subnet.SubnetId)
	}
	publicNet, privateNet := subnet("10.40.1.0/24", true), subnet("10.40.2.0/24", false)
	group := func(name string, port int32) string {
		g, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name), VpcId: vpc.Vpc.VpcId})
		must(err)
		_, err = api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String(name)}},
		}}})
		must(err)
		return aws.ToString(g.GroupId)
	}
	ssh, db, sftp := group("ssh", 22), group("db", 5432), group("sftp", 22)
	instance := func(subnet, group string) string {
		out, err := api.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			SubnetId: aws.String(subnet), SecurityGroupIds: []string{group}})
		must(err)
		return aws.ToString(out.Instances[0].InstanceId)
	}
	public := instance(publicNet, ssh)
	private := instance(privateNet, ssh)
	instance(privateNet, db)
	eni, err := api.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(privateNet), Groups: []string{sftp}})
	must(err)
	eip, err := api.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	must(err)
	_, err = api.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, NetworkInterfaceId: eni.NetworkInterface.NetworkInterfaceId})
	must(err)

	list := writeFile(t, "drop.txt", "192.0.2.0/24\n")
	res := sgvet(t, "", "audit", "--no-cache", "--providers", "blocklist", "--blocklist", list, "--fail-on", "none",
		"--regions", "us-east-1", "--format", "json")
	if res.code != exitOK {
		t.Fatalf("exit %d; stderr: %s", res.code, res.stderr)
	}
	r := decodeReport(t, res.stdout)
	got := map[string]report.Finding{}
	for _, f := range r.Findings {
		if f.Kind == report.OpenToWorld {
			got[f.Ref().GroupID] = f
		}
	}
	check := func(name, group string, sev report.Severity, reachable bool, reason string, exposed ...string) {
		t.Helper()
		f, ok := got[group]
		if !ok {
			t.Fatalf("no open-to-world finding on %s (%s)", name, group)
		}
		g := f.Group()
		var ids []string
		if g != nil {
			for _, x := range g.Exposure {
				ids = append(ids, cmp.Or(x.InstanceID, x.ID))
			}
		}
		if f.Severity != sev || g == nil || g.Reachable == nil || *g.Reachable != reachable || !slices.Equal(ids, exposed) ||
			!slices.ContainsFunc(f.Reasons(), func(s string) bool { return strings.Contains(s, reason) }) {
			t.Errorf("open-to-world on %s: %s, group %+v, exposed %v, reasons %q; want %s, reachable %v, exposed %v, a reason with %q",
				name, f.Severity, g, ids, f.Reasons(), sev, reachable, exposed, reason)
		}
	}
	check("ssh", ssh, report.Critical, true, "exposed: instance "+public, public)
	check("db", db, report.High, false, "no network interface of the group is reachable from the internet")
	check("sftp", sftp, report.Critical, true, "Elastic IP", aws.ToString(eni.NetworkInterface.NetworkInterfaceId))
	if f := got[ssh]; slices.ContainsFunc(f.Reasons(), func(s string) bool { return strings.Contains(s, private) }) {
		t.Errorf("the ssh finding names the private instance %s: %q", private, f.Reasons())
	}
	// The groups table says so too, in its REACHABLE column.
	table := sgvet(t, "", "groups", "--regions", "us-east-1")
	for id, want := range map[string]string{ssh: "yes", db: "no", sftp: "yes"} {
		i := strings.Index(table.stdout, id)
		line, _, _ := strings.Cut(table.stdout[max(i, 0):], "\n")
		if fields := strings.Fields(line); i < 0 || fields[len(fields)-1] != want {
			t.Errorf("groups table line of %s = %q, want REACHABLE %s", id, line, want)
		}
	}
	if r.Summary.FindingsReachable < 2 {
		t.Errorf("findings_reachable = %d, want at least the ssh and sftp findings", r.Summary.FindingsReachable)
	}
}
