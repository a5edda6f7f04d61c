package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; when it is not,
// the version comes from the build information Go records in the binary.
var version string

const versionAbout = `Usage: sgvet version

Print sgvet's version, the source revision it was built from (with "modified" when the
working tree had changes), and the Go version that built it.
`

func runVersion(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	c := newCommandFlags("sgvet version", versionAbout)
	if _, _, err := c.parse(args, stdout); err != nil {
		return err
	}
	info, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(version, info))
	return nil
}

// versionLine describes the build: "sgvet v1.2.0 (revision 0123abcd4567, 2026-11-29T10:00:00Z, go1.26.8)".
// The version is the one set at link time, else the module's version from the build
// information ("(devel)" for a build from a source tree, which says "dev").
func versionLine(linked string, info *debug.BuildInfo) string {
	v := linked
	if v == "" && info != nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	if info == nil {
		return "sgvet " + v
	}
	var details []string
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if settings["vcs.modified"] == "true" {
			rev += ", modified"
		}
		details = append(details, "revision "+rev)
	}
	if t := settings["vcs.time"]; t != "" {
		details = append(details, t)
	}
	if info.GoVersion != "" {
		details = append(details, info.GoVersion)
	}
	if len(details) == 0 {
		return "sgvet " + v
	}
	return fmt.Sprintf("sgvet %s (%s)", v, strings.Join(details, ", "))
}
