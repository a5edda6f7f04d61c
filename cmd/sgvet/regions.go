package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// partition is an AWS partition: the regions it had when this sgvet was built, and the
// pattern its region names follow.
type partition struct {
	id      string
	pattern *regexp.Regexp
	regions []string
}

// partitions are AWS's partitions, as the SDK's endpoint metadata lists them. A region is
// checked against this list before any call, so that a misspelt name ends the run at once
// instead of in retries against a host that does not exist.
var partitions = []partition{
	{"aws-us-gov", regexp.MustCompile(`^us-gov-\w+-\d+$`), []string{"us-gov-east-1", "us-gov-west-1"}},
	{"aws-iso", regexp.MustCompile(`^us-iso-\w+-\d+$`), []string{"us-iso-east-1", "us-iso-west-1"}},
	{"aws-iso-b", regexp.MustCompile(`^us-isob-\w+-\d+$`), []string{"us-isob-east-1", "us-isob-west-1"}},
	{"aws-iso-e", regexp.MustCompile(`^eu-isoe-\w+-\d+$`), []string{"eu-isoe-west-1"}},
	{"aws-iso-f", regexp.MustCompile(`^us-isof-\w+-\d+$`), []string{"us-isof-east-1", "us-isof-south-1"}},
	{"aws-eusc", regexp.MustCompile(`^eusc-de-\w+-\d+$`), []string{"eusc-de-east-1"}},
	{"aws-cn", regexp.MustCompile(`^cn-\w+-\d+$`), []string{"cn-north-1", "cn-northwest-1"}},
	{"aws", regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`), []string{
		"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
		"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
		"ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1",
		"ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
		"eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
		"mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
	}},
}

// knownRegions returns the regions of the partition with id.
func knownRegions(id string) []string {
	for _, p := range partitions {
		if p.id == id {
			return p.regions
		}
	}
	return nil
}

// checkRegion returns an error naming the regions AWS has when region is not one of them.
// The partition whose names region looks like is the one listed, or the commercial one.
func checkRegion(region string) error {
	for _, p := range partitions {
		if slices.Contains(p.regions, region) {
			return nil
		}
	}
	p := partitions[len(partitions)-1]
	for _, q := range partitions {
		if q.pattern.MatchString(region) {
			p = q
			break
		}
	}
	msg := fmt.Sprintf("%q is not an AWS region", region)
	if s := closest(region, p.regions); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return fmt.Errorf("%s (the %s partition has %s; a region newer than this sgvet needs a newer sgvet)",
		msg, p.id, strings.Join(p.regions, ", "))
}
