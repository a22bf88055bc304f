// Command wagate is the WhatsApp dispatch gateway.
//
//	wagate dev      everything in one process against local Redis and
//	                ClickHouse, with the provider simulator and a demo tenant
//	wagate serve    the same roles against configured services and providers
//	wagate migrate  create or update the ClickHouse schema, then exit
//	wagate sim      the Meta Cloud API simulator on its own
//	wagate version  the version, commit and Go version of this build
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dev":
		err = cmdDev(os.Args[2:])
	case "serve":
		err = cmdServe(os.Args[2:])
	case "migrate":
		err = cmdMigrate(os.Args[2:])
	case "sim":
		err = cmdSim(os.Args[2:])
	case "version", "-version", "--version":
		err = cmdVersion(os.Stdout, os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "wagate: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wagate:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: wagate <command> [flags]

commands:
  dev      API, dispatcher, webhook receiver, ClickHouse loader and the provider
           simulator in one process, with a demo tenant (run scripts/dev to start
           local Redis and ClickHouse first)
  serve    the gateway against configured Redis, ClickHouse and providers
           (-config file.json or WAGATE_CONFIG)
  migrate  create the ClickHouse schema and exit
  sim      the Meta Cloud API simulator alone
  version  the version, commit and Go version of this build

Run "wagate <command> -h" for its flags. Flags default to WAGATE_* variables.
`)
}
