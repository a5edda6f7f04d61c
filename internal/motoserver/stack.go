package motoserver

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// stackPoll is the pause between two looks at a stack's status.
const stackPoll = 200 * time.Millisecond

// DeployStack creates the CloudFormation stack named stack in region from the template
// file with params, waits until ctx ends for it to be created, and returns its outputs by
// key. A stack that fails, or is not created before ctx ends, fails the test with the
// stack's events.
func (s *Server) DeployStack(ctx context.Context, t testing.TB, region, file, stack string, params map[string]string) map[string]cftypes.Output {
	t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfn := cloudformation.NewFromConfig(s.AWSConfig(t, region))
	in := &cloudformation.CreateStackInput{
		StackName:    aws.String(stack),
		TemplateBody: aws.String(string(body)),
		// sgvet's templates give their IAM policies and roles names of their own.
		Capabilities: []cftypes.Capability{cftypes.CapabilityCapabilityNamedIam},
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		in.Parameters = append(in.Parameters, cftypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(params[k])})
	}
	if _, err := cfn.CreateStack(ctx, in); err != nil {
		t.Fatalf("CreateStack(%q): %v", stack, err)
	}
	for {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
		if err != nil {
			t.Fatalf("DescribeStacks(%q): %v", stack, err)
		}
		if len(out.Stacks) != 1 {
			t.Fatalf("DescribeStacks(%q) lists %d stacks, want 1", stack, len(out.Stacks))
		}
		st := out.Stacks[0]
		switch {
		case st.StackStatus == cftypes.StackStatusCreateComplete:
			outputs := make(map[string]cftypes.Output, len(st.Outputs))
			for _, o := range st.Outputs {
				outputs[aws.ToString(o.OutputKey)] = o
			}
			return outputs
		case !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS"):
			t.Fatalf("stack %s is %s (%s)%s", stack, st.StackStatus, aws.ToString(st.StackStatusReason), stackEvents(ctx, cfn, stack))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stack %s still %s: %v", stack, st.StackStatus, ctx.Err())
		case <-time.After(stackPoll):
		}
	}
}

// stackEvents returns the stack's events, one a line, to explain a failure.
func stackEvents(ctx context.Context, cfn *cloudformation.Client, stack string) string {
	out, err := cfn.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stack)})
	if err != nil {
		return "\nDescribeStackEvents: " + err.Error()
	}
	var b strings.Builder
	for _, e := range out.StackEvents {
		fmt.Fprintf(&b, "\n%s %s %s", aws.ToString(e.LogicalResourceId), e.ResourceStatus, aws.ToString(e.ResourceStatusReason))
	}
	return b.String()
}
