// Command image writes windrow's container image as a tarball that
// `docker load` (or podman, or crane push) takes, without a container
// daemon: one layer on an empty base, holding the static binary at
// /usr/local/bin/windrow, an /etc/passwd and /etc/group with the non-root
// user windrow (65532), /tmp, the data directory /var/lib/windrow owned by
// that user, and the host's CA bundle if it has one. deploy/build/image.sh
// builds the binary with deploy/build/static.sh and runs this; see there.
//
//	image -bin windrow -out windrow.tar [-tag windrow:dev] [-arch amd64] [-ca FILE]
//	image -check windrow.tar [-tag windrow:dev] [-bin windrow]
//
// -check reads a tarball back: the image under the tag has the entrypoint
// and the binary at its path (the same bytes as -bin's, if given).
//
// It is its own module (tools/image), so that windrow's go.mod does not
// carry go-containerregistry.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	var cfg Config
	flag.StringVar(&cfg.Binary, "bin", "", "the static windrow binary to put at "+BinaryPath+" (required)")
	out := flag.String("out", "", "the image tarball to write (required)")
	flag.StringVar(&cfg.Tag, "tag", "windrow:dev", "the image's tag in the tarball (what docker load names it)")
	flag.StringVar(&cfg.Arch, "arch", runtime.GOARCH, "the image's architecture (the binary's)")
	flag.StringVar(&cfg.CABundle, "ca", DefaultCABundle, "CA bundle to put at "+DefaultCABundle+" (skipped if the file does not exist; \"\": none)")
	flag.StringVar(&cfg.Revision, "revision", "", "the org.opencontainers.image.revision label (a commit)")
	flag.StringVar(&cfg.Version, "version", "", "the org.opencontainers.image.version label")
	check := flag.String("check", "", "read this image tarball back and check it instead of writing one")
	flag.Parse()
	if *check != "" {
		if err := Check(*check, cfg.Tag, cfg.Binary); err != nil {
			fmt.Fprintf(os.Stderr, "image: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "image: %s: %s has entrypoint %s and the binary\n", *check, cfg.Tag, BinaryPath)
		return
	}
	if cfg.Binary == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := WriteFile(*out, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}
