package motoserver

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig returns an SDK configuration that talks to s in region with the static
// credentials test/test and no retries (moto answers 500 for what it does not implement,
// and a retry would only hide that). Its HTTP client sets no overall timeout: a request
// waits as long as the context it is given allows.
func (s *Server) AWSConfig(t testing.TB, region string) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
		awsconfig.WithRegion(region),
		awsconfig.WithBaseEndpoint(s.URL),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		awsconfig.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
