// Command motoseed fills an AWS emulator (moto_server) with a large estate of security
// groups, for measuring collection. It talks only to the endpoint it is given.
//
//	go run ./internal/motoseed -endpoint http://127.0.0.1:PORT -groups 2000 -rules 4
//
// Each group gets -rules ingress rules from distinct public addresses, plus the default
// egress rule EC2 gives every group: 2,000 groups with 4 rules each hold 10,000 rules.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"
)

func main() {
	endpoint := flag.String("endpoint", "", "the emulator's `URL` (required)")
	region := flag.String("region", "us-east-1", "the region to fill")
	groups := flag.Int("groups", 2000, "security groups to create")
	rules := flag.Int("rules", 4, "ingress rules per group")
	flag.Parse()
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "motoseed: -endpoint is required")
		os.Exit(2)
	}
	if err := seed(context.Background(), *endpoint, *region, *groups, *rules); err != nil {
		fmt.Fprintln(os.Stderr, "motoseed:", err)
		os.Exit(1)
	}
}

func seed(ctx context.Context, endpoint, region string, groups, rules int) error {
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(region),
		awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		awsconfig.WithRetryMaxAttempts(3)) // moto now and then answers 500 under concurrent writes
	if err != nil {
		return err
	}
	api := ec2.NewFromConfig(cfg)
	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range groups {
		g.Go(func() error {
			sg, err := api.CreateSecurityGroup(gctx, &ec2.CreateSecurityGroupInput{
				GroupName: aws.String(fmt.Sprintf("group-%05d", i)), Description: aws.String("load"), VpcId: vpc.Vpc.VpcId,
			})
			if err != nil {
				return fmt.Errorf("create group %d: %w", i, err)
			}
			var ranges []types.IpRange
			for r := range rules {
				n := i*rules + r
				ranges = append(ranges, types.IpRange{
					CidrIp:      aws.String(fmt.Sprintf("%d.%d.%d.%d/32", 20+n>>16, (n>>8)&255, n&255, 1+r)),
					Description: aws.String(fmt.Sprintf("rule %d", n)),
				})
			}
			_, err = api.AuthorizeSecurityGroupIngress(gctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{{
				IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), IpRanges: ranges,
			}}})
			if err != nil {
				return fmt.Errorf("authorize group %d: %w", i, err)
			}
			return nil
		})
	}
	return g.Wait()
}
