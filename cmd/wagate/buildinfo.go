package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and commit are set at build time (-ldflags "-X main.version=v1.2.3
// -X main.commit=$(git rev-parse HEAD)"), for builds without the VCS
// information Go records (-buildvcs=false, a Docker context without .git);
// they are never written at run time. Empty: what Go recorded.
var version, commit string

// buildInfo says which wagate this is.
type buildInfo struct {
	Version   string
	Commit    string
	GoVersion string
}

// readBuildInfo reads the version (-ldflags, else the module's), the
// commit and Go's version from what the Go toolchain recorded in the
// binary.
func readBuildInfo() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return makeBuildInfo(version, commit, bi)
}

// makeBuildInfo is readBuildInfo's rule, given the -ldflags version and
// commit and the binary's build information (nil when it has none).
func makeBuildInfo(ldVersion, ldCommit string, bi *debug.BuildInfo) buildInfo {
	out := buildInfo{Version: ldVersion, Commit: ldCommit, GoVersion: runtime.Version()}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if out.Version == "" {
		out.Version = bi.Main.Version
	}
	if out.Version == "" || out.Version == "(devel)" {
		out.Version = "devel"
	}
	if bi.GoVersion != "" {
		out.GoVersion = bi.GoVersion
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if out.Commit == "" && rev != "" {
		out.Commit = rev
		if dirty {
			// Built from a checkout with changes: the commit alone does not
			// say what runs.
			out.Commit += "-dirty"
		}
	}
	if out.Commit == "" {
		out.Commit = "unknown"
	}
	return out
}

// registerBuildInfo adds wagate_build_info{version,commit,goversion} = 1,
// so that dashboards can tell which build each instance runs.
func registerBuildInfo(reg prometheus.Registerer, bi buildInfo) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "wagate_build_info",
		Help:        "Always 1; the labels say which build of wagate runs.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register wagate_build_info: %w", err)
	}
	return nil
}

// cmdVersion prints the version, the commit and Go's version.
func cmdVersion(w io.Writer, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments (got %q)", args)
	}
	bi := readBuildInfo()
	_, err := fmt.Fprintf(w, "wagate %s\ncommit %s\ngo     %s\n", bi.Version, bi.Commit, bi.GoVersion)
	return err
}
